"""Celery tasks of coupons: thin, each inside its tenant, each safe to run twice."""

import logging
from datetime import date

from celery import shared_task
from django.utils import timezone

from scrm.jobs import fan_out_per_tenant
from scrm.tenancy import tenant_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def coupons_issue_for_mall_task(tenant_id: int, redemption_id: int) -> int:
    """The coupon of a points-mall redemption (key ``mall:<id>``: a second run issues
    nothing)."""
    from campaigns.coupons.services import coupons_issue_for_mall

    with tenant_scope(tenant_id):
        return len(coupons_issue_for_mall(redemption_id=redemption_id))


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def coupons_expire_task(tenant_id: int) -> int:
    from campaigns.coupons.services import coupons_expire

    with tenant_scope(tenant_id):
        expired = coupons_expire()
    if expired:
        logger.info("tenant %s: %s coupons expired", tenant_id, expired)
    return expired


@shared_task
def coupons_expire_all_task() -> int:
    """Periodic (hourly): expiry, per tenant."""
    return fan_out_per_tenant(coupons_expire_task)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def coupons_issue_birthdays_task(tenant_id: int, day: str) -> int:
    from campaigns.coupons.services import coupons_issue_birthdays

    with tenant_scope(tenant_id):
        return coupons_issue_birthdays(day=date.fromisoformat(day))


@shared_task
def coupons_issue_birthdays_all_task() -> int:
    """Periodic (daily): the levels' birthday coupons, per tenant, for today in
    Asia/Shanghai."""
    from points.services.policy import local_date

    return fan_out_per_tenant(coupons_issue_birthdays_task,
                              local_date(timezone.now()).isoformat())
