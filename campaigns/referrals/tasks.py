"""Celery tasks of referrals: thin, inside their tenant, safe to run twice."""

from celery import shared_task

from scrm.jobs import fan_out_per_tenant
from scrm.tenancy import tenant_scope


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def referral_progress_task(tenant_id: int, member_ids: list[int]) -> int:
    """Registrations and first purchases of these invitees, recorded and rewarded."""
    from campaigns.referrals.services import referral_progress

    with tenant_scope(tenant_id):
        return referral_progress(member_ids=member_ids)


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def referrals_sweep_task(tenant_id: int) -> int:
    from campaigns.referrals.services.attribution import referrals_sweep

    with tenant_scope(tenant_id):
        return referrals_sweep()


@shared_task
def referrals_sweep_all_task() -> int:
    """Periodic (hourly): what the members' events did not bring."""
    return fan_out_per_tenant(referrals_sweep_task)
