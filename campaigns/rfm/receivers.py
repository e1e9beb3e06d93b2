"""How RFM and lifecycle react to members' domain events."""

from django.db import transaction
from django.dispatch import receiver

from members import signals
from scrm.tenancy import tenant_scope


@receiver(signals.member_merging)
def merge_stages(sender, tenant_id: int, survivor_id: int, merged_id: int, moved: dict,
                 **kwargs) -> None:
    """Inside the merge's transaction (after the tags moved over): the survivor carries
    only its own segment's and stage's tags; the loser has no stage any more.  The
    survivor's stage is evaluated again once the merge committed (its orders grew); the
    next run scores both from their orders."""
    from campaigns.rfm.models import MemberLifecycle, MemberRfm
    from campaigns.rfm.services.lifecycle import lifecycle_forget
    from campaigns.rfm.services.systemtags import LIFECYCLE, RFM, member_tags_reconcile
    from campaigns.rfm.tasks import lifecycle_members_task

    with tenant_scope(tenant_id):
        segment = MemberRfm.objects.filter(member_id=survivor_id).values_list(
            "segment", flat=True).first()
        stage = MemberLifecycle.objects.filter(member_id=survivor_id).values_list(
            "stage", flat=True).first()
        member_tags_reconcile(tenant_id=tenant_id, family=RFM, member_id=survivor_id,
                              code=segment or None)
        member_tags_reconcile(tenant_id=tenant_id, family=LIFECYCLE, member_id=survivor_id,
                              code=stage)
        lifecycle_forget(member_id=merged_id)
    transaction.on_commit(lambda: lifecycle_members_task.delay(tenant_id, [survivor_id]))


# These run after the change committed; the task sets its own tenant.

@receiver(signals.order_paid)
def stages_after_orders(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    from campaigns.rfm.tasks import lifecycle_orders_task

    lifecycle_orders_task.delay(tenant_id, order_ids)


@receiver(signals.order_refunded)
def stages_after_refund(sender, tenant_id: int, order_id: int, refund_id: int,
                        **kwargs) -> None:
    from campaigns.rfm.tasks import lifecycle_orders_task

    lifecycle_orders_task.delay(tenant_id, [order_id])
