"""How campaigns react to other apps' domain events (and the RFM package's): automation
triggers."""

from django.dispatch import receiver
from django.utils import timezone

from campaigns.rfm import signals as rfm_signals
from members import signals as member_signals
from points import signals as points_signals
from scrm.tenancy import tenant_scope


@receiver(points_signals.tier_changed)
def tier_up(sender, tenant_id: int, member_id: int, program_id: int, to_level_id, change: str,
            **kwargs) -> None:
    if change != "upgrade" or to_level_id is None:
        return
    from campaigns.services.automation import automation_trigger

    with tenant_scope(tenant_id):
        automation_trigger(trigger="tier_up", occurrences={
            member_id: f"tier:{program_id}:{to_level_id}:{timezone.localdate():%Y-%m-%d}"})


@receiver(member_signals.order_paid)
def first_purchase(sender, tenant_id: int, order_ids: list[int], **kwargs) -> None:
    from campaigns.models import AutomationRule
    from campaigns.services.automation import automation_trigger
    from members.models import MemberStats, Order

    with tenant_scope(tenant_id):
        if not AutomationRule.objects.filter(trigger="first_purchase", is_active=True).exists():
            return
        buyers = set(Order.objects.filter(pk__in=order_ids).values_list("member_id", flat=True))
        first = MemberStats.objects.filter(member_id__in=buyers, order_count=1).values_list(
            "member_id", flat=True)
        automation_trigger(trigger="first_purchase",
                           occurrences=dict.fromkeys(first, "first_purchase"))


@receiver(rfm_signals.lifecycle_changed)
def became_dormant(sender, tenant_id: int, changes: list[tuple[int, str, str]],
                   **kwargs) -> None:
    from campaigns.services.automation import automation_trigger

    dormant = [member_id for member_id, _from, to in changes if to == "dormant"]
    if not dormant:
        return
    with tenant_scope(tenant_id):
        automation_trigger(trigger="dormant", occurrences=dict.fromkeys(
            dormant, f"dormant:{timezone.localdate():%Y-%m-%d}"))
