"""Celery tasks of the campaigns app: thin, inside their tenant, safe to run twice."""

import logging

from celery import shared_task

from scrm.jobs import fan_out_per_tenant
from scrm.tenancy import tenant_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def campaign_run_task(tenant_id: int, run_id: int) -> None:
    from campaigns.models import CampaignRun
    from campaigns.services.campaigns import campaign_run

    with tenant_scope(tenant_id):
        run = CampaignRun.objects.select_related("campaign__tenant").filter(pk=run_id).first()
        if run is None:
            return
        try:
            campaign_run(run=run)
        except Exception as exc:
            CampaignRun.objects.filter(pk=run_id).update(error=f"{type(exc).__name__}: {exc}")
            raise


@shared_task
def campaigns_dispatch_task(tenant_id: int) -> int:
    """Start the tenant's runs that are due (scheduled, parked by quiet hours or the
    throttle, or left by a crashed worker whose lease ran out)."""
    from campaigns.services.automation import firings_due_run
    from campaigns.services.campaigns import runs_due

    with tenant_scope(tenant_id):
        due = runs_due()
        firings_due_run()
    for run_id in due:
        campaign_run_task.delay(tenant_id, run_id)
    return len(due)


@shared_task
def campaigns_dispatch_all_task() -> int:
    """Periodic (every minute)."""
    return fan_out_per_tenant(campaigns_dispatch_task)


@shared_task(bind=True, acks_late=True, soft_time_limit=600, time_limit=700, max_retries=10)
def messages_send_task(self, tenant_id: int, kind: str, params: dict, member_ids: list[int],
                       key_prefix: str) -> int:
    """Messages of one chunk; each keyed, so a retry sends nothing twice."""
    from campaigns.services.actions import messages_send

    with tenant_scope(tenant_id):
        try:
            outcomes = messages_send(kind=kind, params=params, member_ids=member_ids,
                                     key_prefix=key_prefix)
        except Exception as exc:
            logger.warning("messages of %s failed: %s", key_prefix, exc)
            raise self.retry(countdown=min(60 * 2 ** self.request.retries, 1800),
                             exc=exc) from exc
    return len(outcomes)


@shared_task
def automation_daily_task(tenant_id: int) -> int:
    from campaigns.services.automation import automation_daily

    with tenant_scope(tenant_id):
        return automation_daily()


@shared_task
def automation_daily_all_task() -> int:
    """Periodic (daily): birthdays in N days, points expiring in N days."""
    return fan_out_per_tenant(automation_daily_task)
