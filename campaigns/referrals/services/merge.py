"""What a member merge means for referrals and lotteries (inside the merge's transaction,
so the merge stays all-or-nothing)."""

from django.db.models import F

from campaigns.referrals.models import (
    LotteryCode,
    LotteryDraw,
    LotteryParticipant,
    ReferralAttribution,
    ReferralGrant,
    ReferralInvite,
)
from members.models import Member

Status = ReferralAttribution.Status
LIVE = (Status.ATTRIBUTED, Status.HELD)


def referrals_member_merge(*, survivor_id: int, merged_id: int) -> None:
    """An invitee merged into a member who existed before they were attributed was no new
    invitee after all: the attribution lapses (``merged_into_known``).  Otherwise, and for
    everything else, the merged member's rows move to the survivor."""
    survivor = Member.objects.get(pk=survivor_id)
    for attribution in ReferralAttribution.objects.filter(invitee_id=merged_id,
                                                          status__in=LIVE):
        taken = ReferralAttribution.objects.filter(
            campaign_id=attribution.campaign_id, invitee_id=survivor_id,
            status__in=LIVE).exists()
        if survivor.created_at < attribution.occurred_at or taken:
            attribution.status = Status.INVALIDATED
            attribution.reason = ReferralAttribution.Reason.MERGED_INTO_KNOWN
            attribution.save(update_fields=["status", "reason"])
    ReferralAttribution.objects.filter(invitee_id=merged_id).update(invitee_id=survivor_id)
    ReferralAttribution.objects.filter(inviter_id=merged_id).update(inviter_id=survivor_id)
    held = set(ReferralInvite.objects.filter(inviter_id=survivor_id).values_list(
        "campaign_id", flat=True))
    # Where both had an invite in a campaign, the merged one's keeps working: attributions
    # through it go to the member it was merged into.
    ReferralInvite.objects.filter(inviter_id=merged_id).exclude(campaign_id__in=held).update(
        inviter_id=survivor_id)
    ReferralGrant.objects.filter(member_id=merged_id).update(member_id=survivor_id)
    _lotteries_merge(survivor_id=survivor_id, merged_id=merged_id)


def _lotteries_merge(*, survivor_id: int, merged_id: int) -> None:
    LotteryDraw.objects.filter(member_id=merged_id).update(member_id=survivor_id)
    LotteryCode.objects.filter(member_id=merged_id).update(member_id=survivor_id)
    for participant in LotteryParticipant.objects.filter(member_id=merged_id):
        kept = LotteryParticipant.objects.select_for_update().filter(
            lottery_id=participant.lottery_id, member_id=survivor_id).first()
        if kept is None:
            LotteryParticipant.objects.filter(pk=participant.pk).update(member_id=survivor_id)
            continue
        same_day = kept.day == participant.day
        LotteryParticipant.objects.filter(pk=kept.pk).update(
            draws_total=F("draws_total") + participant.draws_total,
            code_draws=F("code_draws") + participant.code_draws,
            draws_today=F("draws_today") + (participant.draws_today if same_day else 0))
        participant.delete()
