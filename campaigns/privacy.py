"""The campaigns apps' part of a member's personal-data export and erasure: coupons,
deliveries, automations, referrals and lotteries are exported; the RFM and lifecycle
profile is deleted on erasure or when profiling consent is withdrawn (coupons, deliveries and
referral rows stay, for accounting)."""

from django.dispatch import receiver

from campaigns.coupons.models import Coupon
from campaigns.models import AutomationFiring, Delivery
from campaigns.referrals.models import (
    LotteryCode,
    LotteryDraw,
    LotteryParticipant,
    ReferralAttribution,
    ReferralGrant,
    ReferralInvite,
)
from campaigns.rfm.models import MemberLifecycle, MemberRfm
from campaigns.rfm.services.systemtags import LIFECYCLE, RFM
from members import signals
from members.privacy import models_section, personal_data_section
from tags.models import MemberTag
from tags.privacy import member_tags_drop


@receiver(signals.consent_changed, dispatch_uid="campaigns.privacy.profiling")
def drop_member_profile(sender, tenant_id: int, member_id: int, purpose: str, granted: bool,
                        **kwargs) -> None:
    """Profiling withdrawn: the member's RFM and lifecycle rows and their system tags go;
    the recomputations leave the member out from then on."""
    if purpose != "profiling" or granted:
        return
    MemberRfm.objects.filter(member_id=member_id).delete()
    MemberLifecycle.objects.filter(member_id=member_id).delete()
    member_tags_drop(MemberTag.objects.filter(
        member_id=member_id, tag__external_source__in=(RFM.source, LIFECYCLE.source)))


@receiver(signals.member_erasing, dispatch_uid="campaigns.privacy.erase")
def erase_member_profile(sender, tenant_id: int, member_ids: list[int], removed: dict,
                         **kwargs) -> None:
    removed["rfm"] = MemberRfm.objects.filter(member_id__in=member_ids).delete()[0]
    removed["lifecycle"] = MemberLifecycle.objects.filter(member_id__in=member_ids).delete()[0]


def register() -> None:
    personal_data_section("coupons", models_section(("coupons", Coupon, "member")))
    personal_data_section("campaigns", models_section(
        ("deliveries", Delivery, "member"), ("automation_firings", AutomationFiring, "member")))
    personal_data_section("rfm", models_section(
        ("rfm", MemberRfm, "member"), ("lifecycle", MemberLifecycle, "member")))
    personal_data_section("referrals", models_section(
        ("invites", ReferralInvite, "inviter"), ("invited", ReferralAttribution, "invitee"),
        ("referred", ReferralAttribution, "inviter"), ("grants", ReferralGrant, "member"),
        ("lottery_participations", LotteryParticipant, "member"),
        ("lottery_codes", LotteryCode, "member"), ("lottery_draws", LotteryDraw, "member")))
