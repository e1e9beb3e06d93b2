"""Celery tasks of the points app: thin, each inside its tenant, each safe to run twice."""

import logging
from datetime import date

from celery import shared_task
from django.utils import timezone

from scrm.models import Tenant
from scrm.tenancy import tenant_scope, unscoped_access

logger = logging.getLogger(__name__)

# Expiry splits each tenant by member id so that several workers share a big tenant's year-end
# expiry (each shard locks only its own members' accounts).
EXPIRY_SHARDS = 4


def _tenants() -> list[int]:
    with unscoped_access("fan out a periodic points job"):
        return list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def points_award_orders_task(tenant_id: int, order_ids: list[int]) -> int:
    """Points for paid orders (``order:<id>`` keys: a second run awards nothing)."""
    from members.models import Order
    from points.services import points_award_order

    awarded = 0
    with tenant_scope(tenant_id):
        for order in Order.objects.filter(pk__in=order_ids).order_by("pk"):
            awarded += points_award_order(order=order) is not None
    return awarded


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def points_reverse_refund_task(tenant_id: int, order_id: int, refund_id: int) -> int:
    from members.models import Order
    from points.services import points_reverse_refund

    with tenant_scope(tenant_id):
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            return 0
        result = points_reverse_refund(order=order, refund_id=refund_id)
    return 0 if result is None else -result.entry.points


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def points_award_signup_task(tenant_id: int, member_id: int) -> int:
    from members.models import Member
    from points.services import points_award_signup

    with tenant_scope(tenant_id):
        member = Member.objects.filter(pk=member_id).first()
        result = points_award_signup(member=member) if member is not None else None
    return 0 if result is None else result.entry.points


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def points_expire_task(tenant_id: int, shard: int = 0, shards: int = 1) -> int:
    from points.services import points_expire

    with tenant_scope(tenant_id):
        lots, points = points_expire(shard=(shard, shards))
    if lots:
        logger.info("tenant %s: %s lots (%s points) expired", tenant_id, lots, points)
    return lots


@shared_task
def points_expire_all_task() -> int:
    """Periodic (hourly): expiry tasks for every active tenant, EXPIRY_SHARDS each."""
    tenant_ids = _tenants()
    for tenant_id in tenant_ids:
        for shard in range(EXPIRY_SHARDS):
            points_expire_task.delay(tenant_id, shard, EXPIRY_SHARDS)
    return len(tenant_ids)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def points_award_birthdays_task(tenant_id: int, day: str) -> int:
    from points.services import points_award_birthdays

    with tenant_scope(tenant_id):
        return points_award_birthdays(day=date.fromisoformat(day))


@shared_task
def points_award_birthdays_all_task() -> int:
    """Periodic (daily): birthday points, per tenant, for today in Asia/Shanghai."""
    from points.services.policy import local_date

    day = local_date(timezone.now()).isoformat()
    tenant_ids = _tenants()
    for tenant_id in tenant_ids:
        points_award_birthdays_task.delay(tenant_id, day)
    return len(tenant_ids)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def points_ledger_check_task(tenant_id: int) -> int:
    from points.selectors import ledger_drift

    with tenant_scope(tenant_id):
        drift = ledger_drift()
    for row in drift[:100]:
        logger.error("tenant %s: points ledger drift %s", tenant_id, row)
    return len(drift)


@shared_task
def points_ledger_check_all_task() -> int:
    """Periodic (nightly): balance == sum(ledger) == sum(live lots), per tenant."""
    tenant_ids = _tenants()
    for tenant_id in tenant_ids:
        points_ledger_check_task.delay(tenant_id)
    return len(tenant_ids)


# Tiers


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def tiers_for_orders_task(tenant_id: int, order_ids: list[int]) -> int:
    """Growth value and upgrades for paid orders (keyed per programme and order)."""
    from members.models import Order
    from points.services.growth import tiers_for_order
    from points.services.rules import system_actor

    with tenant_scope(tenant_id):
        actor = system_actor()
        orders = Order.objects.filter(pk__in=order_ids).select_related("store").order_by("pk")
        for order in orders:
            tiers_for_order(actor=actor, order=order)
    return len(order_ids)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def tiers_for_refund_task(tenant_id: int, order_id: int, refund_id: int) -> None:
    from members.models import Order
    from points.services.growth import tiers_for_refund
    from points.services.rules import system_actor

    with tenant_scope(tenant_id):
        order = Order.objects.filter(pk=order_id).first()
        if order is not None:
            tiers_for_refund(actor=system_actor(), order=order, refund_id=refund_id)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def tiers_sweep_task(tenant_id: int, program_id: int) -> int:
    """Upgrades after a programme's levels changed."""
    from points.models import TierProgram
    from points.services.growth import tiers_sweep

    with tenant_scope(tenant_id):
        program = TierProgram.objects.filter(pk=program_id, is_active=True).first()
        return tiers_sweep(program=program) if program else 0


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def tiers_review_task(tenant_id: int) -> int:
    from points.models import TierProgram
    from points.services.growth import tiers_review

    changed = 0
    with tenant_scope(tenant_id):
        for program in TierProgram.objects.filter(is_active=True).order_by("pk"):
            changed += tiers_review(program=program)
    return changed


@shared_task
def tiers_review_all_task() -> int:
    """Periodic (daily): every tenant's due tier reviews (downgrades and expired overrides)."""
    tenant_ids = _tenants()
    for tenant_id in tenant_ids:
        tiers_review_task.delay(tenant_id)
    return len(tenant_ids)
