"""How referrals react to members' events: an invitee's first purchase and registration
(a phone), and member merges."""

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver

from members import signals as member_signals
from members.models import Member, Order
from scrm.tenancy import tenant_scope


def _queue(tenant_id: int, member_ids) -> None:
    """Queue the invitees among ``member_ids`` whose registration or first purchase is not
    recorded yet (one indexed query when none is)."""
    from campaigns.referrals.models import ReferralAttribution
    from campaigns.referrals.tasks import referral_progress_task

    with tenant_scope(tenant_id):
        pending = sorted(set(ReferralAttribution.objects.filter(
            invitee_id__in=list(member_ids), status__in=["attributed", "held"]).filter(
            Q(registered_at__isnull=True) | Q(first_purchase_at__isnull=True)).values_list(
            "invitee_id", flat=True)))
    if pending:
        referral_progress_task.delay(tenant_id, pending)


@receiver(member_signals.order_paid)
def orders_paid(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    with tenant_scope(tenant_id):
        buyers = set(Order.objects.filter(pk__in=order_ids).values_list("member_id", flat=True))
    _queue(tenant_id, buyers)


@receiver(post_save, sender=Member)
def phone_attached(sender, instance: Member, update_fields=None, **kwargs) -> None:
    # The members app sends no event when an upsert gives an existing member their first
    # phone (it saves just the phone columns): this is where a registration shows.  A
    # periodic sweep catches the paths that save no Member at all.
    if not update_fields or "phone_hash" not in update_fields or not instance.phone_hash:
        return
    tenant_id, member_id = instance.tenant_id, instance.pk
    transaction.on_commit(lambda: _queue(tenant_id, [member_id]))


@receiver(member_signals.member_merging)
def member_merging(sender, tenant_id: int, survivor_id: int, merged_id: int, **kwargs) -> None:
    from campaigns.referrals.services import referrals_member_merge

    with tenant_scope(tenant_id):
        referrals_member_merge(survivor_id=survivor_id, merged_id=merged_id)


@receiver(member_signals.member_merged)
def member_merged(sender, tenant_id: int, survivor_id: int, merged_id: int, **kwargs) -> None:
    _queue(tenant_id, [survivor_id])  # the merged member may have brought a phone or orders
