"""How the tags app reacts to members' domain events."""

from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Greatest
from django.dispatch import receiver

from members import signals
from scrm.tenancy import tenant_scope
from tags.audience.index import audience_mark_dirty
from tags.models import MemberTag, Tag


@receiver(signals.members_changed)
def mark_members_dirty(sender, tenant_id: int, member_ids: list[int],
                       member_nos: list[int] | None = None, **kwargs) -> None:
    if member_nos:
        audience_mark_dirty(member_nos=member_nos)
    else:
        audience_mark_dirty(member_ids=member_ids)


@receiver(signals.members_loaded)
def rebuild_after_bulk_load(sender, tenant_id: int, **kwargs) -> None:
    from tags.audience.index import audience_rebuild

    with tenant_scope(tenant_id):
        audience_rebuild()


@receiver(signals.member_merging)
def move_member_tags(sender, tenant_id: int, survivor_id: int, merged_id: int, moved: dict,
                     **kwargs) -> None:
    """The survivor keeps its own tag rows; the loser's other tags move over."""
    on_survivor = MemberTag.objects.filter(member_id=survivor_id, tag_id=OuterRef("tag_id"))
    losers = MemberTag.objects.filter(member_id=merged_id)
    duplicates = losers.filter(Exists(on_survivor))
    # The tags both had now count the survivor once.
    Tag.objects.filter(pk__in=list(duplicates.values_list("tag_id", flat=True))).update(
        member_count=Greatest(F("member_count") - 1, 0))
    duplicates.delete()
    moved["tags"] = losers.update(member_id=survivor_id)


# These run after the change committed (the request's tenant context may be gone), so each
# sets its own tenant.

def _rules_for(tenant_id: int, member_ids=None, order_ids=None) -> None:
    from members.models import Order
    from tags.selectors import tenant_has_rule_tags
    from tags.tasks import tag_rules_evaluate_task

    if not tenant_has_rule_tags(tenant_id):
        return
    with tenant_scope(tenant_id):
        if order_ids is not None:
            member_ids = list(Order.objects.filter(pk__in=order_ids)
                              .values_list("member_id", flat=True).distinct())
    tag_rules_evaluate_task.delay(tenant_id, member_ids)


@receiver(signals.order_paid)
def rules_after_orders(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    _rules_for(tenant_id, order_ids=order_ids)


@receiver(signals.order_refunded)
def rules_after_refund(sender, tenant_id: int, order_id: int, **kwargs) -> None:
    _rules_for(tenant_id, order_ids=[order_id])


@receiver(signals.member_updated)
@receiver(signals.member_created)
def rules_after_profile(sender, tenant_id: int, member_id: int, **kwargs) -> None:
    _rules_for(tenant_id, [member_id])


@receiver(signals.order_paid)
def products_after_orders(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    from tags.tasks import product_sync_task

    product_sync_task.delay(tenant_id, order_ids)
