from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from scrm.models import IdempotencyRecord
from scrm.tenancy import unscoped_access


@shared_task
def idempotency_records_purge_task() -> int:
    """Forget idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS, across tenants."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    with unscoped_access("purge expired idempotency keys"):
        deleted, _detail = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
