"""How the points app reacts to members' domain events."""

from django.db import connection
from django.dispatch import receiver

from members import signals
from points.models import MallRedemption, PointsPolicy
from scrm.tenancy import tenant_scope


@receiver(signals.member_merging)
def move_member_points(sender, tenant_id: int, survivor_id: int, merged_id: int, moved: dict,
                       **kwargs) -> None:
    """Inside the merge's transaction: the loser's points go with it, all or nothing."""
    from points.services import points_merge
    from points.services.growth import tiers_merge

    with tenant_scope(tenant_id):
        moved["points"] = points_merge(tenant_id=tenant_id, survivor_id=survivor_id,
                                       merged_id=merged_id, operator="system")
        moved["tiers"] = tiers_merge(survivor_id=survivor_id, merged_id=merged_id)
        # The survivor's per-member mall limits count the loser's redemptions too.
        moved["mall_redemptions"] = MallRedemption.objects.filter(member_id=merged_id).update(
            member_id=survivor_id)


# These run after the change committed (the request's tenant context may be gone): the
# tasks set their own tenant.


@receiver(signals.order_paid)
def points_for_orders(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    from points.tasks import points_award_orders_task

    points_award_orders_task.delay(tenant_id, order_ids)


@receiver(signals.order_refunded)
def points_for_refund(sender, tenant_id: int, order_id: int, refund_id: int, **kwargs) -> None:
    from points.tasks import points_reverse_refund_task

    points_reverse_refund_task.delay(tenant_id, order_id, refund_id)


@receiver(signals.member_created)
def points_for_signup(sender, tenant_id: int, member_id: int, **kwargs) -> None:
    from points.tasks import points_award_signup_task

    # Every sign-up asks, so one column rather than policy_get()'s queryset, which cost more
    # than the rest of the sign-up.  No policy row yet means the defaults: no signup points.
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(f"SELECT signup_points FROM {PointsPolicy._meta.db_table} "  # noqa: S608
                       "WHERE tenant_id = %s", [tenant_id])
        row = cursor.fetchone()
    if not (row and row[0]):
        return
    points_award_signup_task.delay(tenant_id, member_id)


@receiver(signals.order_paid)
def tiers_for_orders(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    from points.tasks import tiers_for_orders_task

    if _has_programs(tenant_id):
        tiers_for_orders_task.delay(tenant_id, order_ids)


@receiver(signals.order_refunded)
def tiers_for_refund(sender, tenant_id: int, order_id: int, refund_id: int, **kwargs) -> None:
    from points.tasks import tiers_for_refund_task

    if _has_programs(tenant_id):
        tiers_for_refund_task.delay(tenant_id, order_id, refund_id)


def _has_programs(tenant_id: int) -> bool:
    from points.models import TierProgram

    with tenant_scope(tenant_id):
        return TierProgram.objects.filter(is_active=True).exists()
