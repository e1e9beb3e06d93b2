import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from scrm.models import IdempotencyRecord, Tenant
from scrm.tenancy import tenant_scope, unscoped_access

logger = logging.getLogger(__name__)


@shared_task
def idempotency_records_purge_task() -> int:
    """Forget idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS, across tenants."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    with unscoped_access("purge expired idempotency keys"):
        deleted, _detail = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


WARM_TIME_LIMIT = 660


@shared_task(acks_late=True, soft_time_limit=600, time_limit=WARM_TIME_LIMIT)
def reports_warm_task(tenant_id: int) -> int:
    """One tenant's dashboard reports, recomputed into the cache; skipped while another run
    for the tenant is still at it (a slow run is never stacked up behind)."""
    from scrm.reports import report_key, reports_warm

    lock = report_key(tenant_id=tenant_id, visible="warming", name="lock")
    if not cache.add(lock, 1, timeout=WARM_TIME_LIMIT):  # a killed run's lock lapses too
        return 0
    try:
        with tenant_scope(tenant_id):
            tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
            result = reports_warm(tenant=tenant) if tenant else None
    finally:
        cache.delete(lock)
    if result and result.failed:
        logger.warning("tenant %s: %s dashboard reports failed to warm", tenant_id,
                       result.failed)
    return result.warmed if result else 0


@shared_task
def reports_warm_all_task() -> int:
    """Periodic: one warming task per active tenant, when any report is registered."""
    from scrm.jobs import fan_out_per_tenant
    from scrm.reports import REPORTS

    if not REPORTS or settings.DASHBOARD_CACHE_SECONDS <= 0:
        return 0
    return fan_out_per_tenant(reports_warm_task, expires=settings.DASHBOARD_WARM_SECONDS)
