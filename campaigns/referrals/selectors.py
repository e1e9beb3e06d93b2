"""Reads of referrals and lotteries: the KOC leaderboard, a campaign's figures, attributions,
and a member's odds in a lottery."""

from fractions import Fraction
from typing import Any

from django.db.models import Count, Min, Q, QuerySet, Sum

from campaigns.referrals.models import (
    Lottery,
    LotteryPrize,
    ReferralAttribution,
    ReferralCampaign,
    ReferralInvite,
)
from campaigns.referrals.services.lottery import prize_weights, tier_multiplier
from members.models import Member

Status = ReferralAttribution.Status
LEADERBOARD_MAX = 200


def referral_leaderboard(*, campaign: ReferralCampaign, by: str = "invites",
                         limit: int = 50) -> list[dict[str, Any]]:
    """Inviters ranked by successful invites (``by="invites"``; ties: the invitees'
    first-purchase GMV, then who got there first) or by that GMV (``by="gmv"``)."""
    totals = (ReferralAttribution.objects
              .filter(campaign=campaign, status=Status.ATTRIBUTED)
              .values("inviter_id")
              .annotate(successes=Count("pk", filter=Q(successful_at__isnull=False)),
                        invites=Count("pk"),
                        buyers=Count("pk", filter=Q(first_purchase_at__isnull=False)),
                        gmv_fen=Sum("first_purchase_fen"),
                        first_success=Min("successful_at")))  # fmt: skip
    if by == "gmv":
        totals = totals.filter(gmv_fen__gt=0).order_by("-gmv_fen", "-successes",
                                                       "first_success", "inviter_id")
    else:
        totals = totals.filter(successes__gt=0).order_by("-successes", "-gmv_fen",
                                                         "first_success", "inviter_id")
    rows = list(totals[:min(limit, LEADERBOARD_MAX)])
    members = Member.objects.in_bulk([row["inviter_id"] for row in rows])
    return [{"rank": rank, "member": members.get(row["inviter_id"]),
             "successes": row["successes"], "invites": row["invites"],
             "buyers": row["buyers"], "gmv_fen": row["gmv_fen"] or 0}
            for rank, row in enumerate(rows, start=1)]


def referral_stats(*, campaign: ReferralCampaign) -> dict[str, Any]:
    """Invites, link clicks, attributions by status, successes and first-purchase GMV."""
    invites = ReferralInvite.objects.filter(campaign=campaign).aggregate(
        invites=Count("pk"), clicks=Sum("clicks"))
    attributions = ReferralAttribution.objects.filter(campaign=campaign)
    by_status = dict(attributions.values("status").annotate(n=Count("pk")).values_list(
        "status", "n"))
    live = attributions.filter(status=Status.ATTRIBUTED).aggregate(
        successes=Count("pk", filter=Q(successful_at__isnull=False)),
        registered=Count("pk", filter=Q(registered_at__isnull=False)),
        buyers=Count("pk", filter=Q(first_purchase_at__isnull=False)),
        gmv_fen=Sum("first_purchase_fen"))
    return {"invites": invites["invites"], "clicks": invites["clicks"] or 0,
            "attributions": {status: by_status.get(status, 0) for status in Status.values},
            "successes": live["successes"], "registered": live["registered"],
            "buyers": live["buyers"], "gmv_fen": live["gmv_fen"] or 0}


def attribution_list(*, campaign: ReferralCampaign,
                     filters: dict[str, Any]) -> QuerySet[ReferralAttribution]:
    attributions = ReferralAttribution.objects.filter(campaign=campaign)
    for name in ("status", "reason", "inviter_id", "invitee_id"):
        if filters.get(name) not in (None, ""):
            attributions = attributions.filter(**{name: filters[name]})
    return attributions


def lottery_odds(*, lottery: Lottery, member: Member) -> list[dict[str, Any]]:
    """The chance of each prize still in stock for this member's next draw."""
    prizes = [prize for prize in lottery.prizes.filter(is_active=True)
              if prize.kind == LotteryPrize.Kind.THANKS or prize.stock > 0]
    if not any(prize.kind == LotteryPrize.Kind.REWARD for prize in prizes):
        return []
    multiplier = tier_multiplier(lottery=lottery, member_id=member.pk)
    weights = prize_weights(prizes, multiplier)
    total = sum(weights)
    return [{"prize": prize, "multiplier": multiplier,
             "chance": Fraction(weight, total)}
            for prize, weight in zip(prizes, weights, strict=True)]
