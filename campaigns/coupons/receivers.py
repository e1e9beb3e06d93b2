"""How coupons react to the points mall and to member merges."""

from django.dispatch import receiver

from members import signals as member_signals
from points import signals as points_signals
from scrm.tenancy import tenant_scope


@receiver(points_signals.mall_redeemed)
def issue_mall_coupon(sender, tenant_id: int, redemption_id: int, **kwargs) -> None:
    """After the redemption committed: a coupon item's coupon is issued by a task (which
    then fulfils the redemption)."""
    from campaigns.coupons.tasks import coupons_issue_for_mall_task
    from points.models import MallItem, MallRedemption

    with tenant_scope(tenant_id):
        is_coupon = MallRedemption.objects.filter(
            pk=redemption_id, item__kind=MallItem.Kind.COUPON).exists()
    if is_coupon:
        coupons_issue_for_mall_task.delay(tenant_id, redemption_id)


@receiver(member_signals.member_merging)
def move_member_coupons(sender, tenant_id: int, survivor_id: int, merged_id: int, moved: dict,
                        **kwargs) -> None:
    """Inside the merge's transaction: the loser's coupons go to the survivor."""
    from campaigns.coupons.models import Coupon

    with tenant_scope(tenant_id):
        moved["coupons"] = Coupon.objects.filter(member_id=merged_id).update(
            member_id=survivor_id)
