"""Rewards of referral campaigns: what an invitee's follow, registration and first purchase
give the inviter and the invitee, and what inviters get when their successful invites reach
a milestone.

Each reward is given through ``campaigns.services.actions.action_apply`` under a key unique
per (campaign, invitee, event, beneficiary, rule) (milestones: per inviter and threshold),
claimed by a ``ReferralGrant`` row first: an event handled twice gives nothing twice, and the
points ledger and coupons are keyed by it too.  A reward that cannot be given (a coupon out
of stock, a template switched off) is recorded as such and does not undo the attribution.

Callers hold the invite's row lock (see ``attribution``): it serialises one inviter's
attributions and successes, so milestones are counted race-free."""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.referrals.models import (
    ReferralAttribution,
    ReferralGrant,
    ReferralReward,
    RewardKind,
)
from campaigns.referrals.services.common import member_current
from campaigns.services.actions import action_apply
from members.models import Member
from members.services import timeline_add
from points.services import Ref
from scrm.access import Actor
from scrm.api.errors import ApplicationError

logger = logging.getLogger(__name__)

REF_TYPE = "referral"


def _key(attribution: ReferralAttribution, reward: ReferralReward) -> str:
    if reward.event == ReferralReward.Event.MILESTONE:
        return (f"referral:{attribution.campaign_id}:inviter{attribution.inviter_id}"
                f":milestone{reward.threshold}:{reward.pk}")
    return (f"referral:{attribution.campaign_id}:{attribution.invitee_id}:{reward.event}"
            f":{reward.beneficiary}:{reward.pk}")


def _coupon_issued(key: str, member: Member) -> bool:
    from campaigns.coupons.models import Coupon

    return Coupon.objects.filter(idempotency_key=f"{key}:{member.pk}").exists()


def _apply(*, actor: Actor, reward: ReferralReward, member: Member, key: str,
           campaign_id: int) -> tuple[str, str]:
    """(outcome, detail) of giving the reward, in a savepoint of its own."""
    try:
        with transaction.atomic():
            result = action_apply(actor=actor, kind=reward.kind, params=reward.params,
                                  members=[member], key_prefix=key,
                                  ref=Ref(REF_TYPE, str(campaign_id)))
    except ApplicationError as exc:
        logger.warning("referral reward %s for member %s failed: %s", key, member.pk, exc)
        return ReferralGrant.Outcome.FAILED, f"{exc.code}: {exc.detail}"[:255]
    if reward.kind == RewardKind.COUPON and not _coupon_issued(key, member):
        return ReferralGrant.Outcome.NOT_ISSUED, _("优惠券库存不足或已达领取上限")
    return ReferralGrant.Outcome.GRANTED, result.get(member.pk, "")


def reward_give(*, actor: Actor, attribution: ReferralAttribution,
                reward: ReferralReward) -> ReferralGrant | None:
    """Give one reward for the attribution, unless its key was given before (None)."""
    member_id = (attribution.inviter_id if reward.beneficiary ==
                 ReferralReward.Beneficiary.INVITER else attribution.invitee_id)
    member = member_current(Member.objects.get(pk=member_id))
    key = _key(attribution, reward)
    try:
        with transaction.atomic():
            grant = ReferralGrant.objects.create(
                tenant_id=attribution.tenant_id, campaign_id=attribution.campaign_id,
                attribution=attribution, reward_id=reward.pk, event=reward.event,
                beneficiary=reward.beneficiary, member=member, kind=reward.kind,
                params=reward.params, key=key, outcome=ReferralGrant.Outcome.FAILED)
    except IntegrityError:
        return None
    grant.outcome, grant.detail = _apply(actor=actor, reward=reward, member=member, key=key,
                                         campaign_id=attribution.campaign_id)
    grant.save(update_fields=["outcome", "detail"])
    timeline_add(member=member, kind="referral.reward", actor=actor.label, data={
        "campaign_id": attribution.campaign_id, "event": reward.event,
        "beneficiary": reward.beneficiary, "kind": reward.kind, "outcome": grant.outcome})
    return grant


def rewards_for_event(*, actor: Actor, attribution: ReferralAttribution,
                      event: str) -> list[ReferralGrant]:
    """The campaign's rewards for the invitee's ``event``, to whoever each names."""
    rewards = ReferralReward.objects.filter(campaign_id=attribution.campaign_id, event=event)
    grants = [reward_give(actor=actor, attribution=attribution, reward=reward)
              for reward in rewards]
    return [grant for grant in grants if grant is not None]


def successes(*, campaign_id: int, inviter_id: int) -> int:
    return ReferralAttribution.objects.filter(
        campaign_id=campaign_id, inviter_id=inviter_id,
        status=ReferralAttribution.Status.ATTRIBUTED, successful_at__isnull=False).count()


def success_record(*, actor: Actor, attribution: ReferralAttribution,
                   at: datetime) -> list[ReferralGrant]:
    """The invite counts as successful: the inviter's milestone rewards for the number it
    reaches, and the growth value (成长值) tier programmes give for a referral."""
    marked = ReferralAttribution.objects.filter(
        pk=attribution.pk, status=ReferralAttribution.Status.ATTRIBUTED,
        successful_at__isnull=True).update(successful_at=at)
    if not marked:
        return []
    attribution.successful_at = at
    reached = successes(campaign_id=attribution.campaign_id, inviter_id=attribution.inviter_id)
    # Exactly the number reached: a milestone is crossed once, by the success that reaches
    # it, whatever happens to its rules later.
    milestones = ReferralReward.objects.filter(campaign_id=attribution.campaign_id,
                                               event=ReferralReward.Event.MILESTONE,
                                               threshold=reached)
    grants = [reward_give(actor=actor, attribution=attribution, reward=reward)
              for reward in milestones]
    _growth(actor=actor, attribution=attribution)
    return [grant for grant in grants if grant is not None]


def _growth(*, actor: Actor, attribution: ReferralAttribution) -> None:
    from points.models import GrowthSource
    from points.services.growth import growth_for_activity

    inviter = member_current(Member.objects.get(pk=attribution.inviter_id))
    try:
        with transaction.atomic():
            growth_for_activity(actor=actor, member=inviter, source=GrowthSource.REFERRAL,
                                ref=("referral_attribution", str(attribution.pk)))
    except ApplicationError as exc:
        logger.warning("referral growth for attribution %s failed: %s", attribution.pk, exc)
