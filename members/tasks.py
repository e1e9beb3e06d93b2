import logging

from celery import shared_task

from members.services.reconcile import member_stats_reconcile
from scrm.jobs import fan_out_per_tenant
from scrm.tenancy import tenant_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def member_stats_reconcile_task(tenant_id: int) -> int:
    with tenant_scope(tenant_id):
        drift = member_stats_reconcile()
    if drift:
        logger.warning("tenant %s: %s members' stats had drifted and were fixed", tenant_id,
                       drift)
    return drift


@shared_task
def member_stats_reconcile_all_task() -> int:
    """Periodic: one reconcile task per active tenant."""
    return fan_out_per_tenant(member_stats_reconcile_task)
