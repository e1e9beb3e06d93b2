"""Referral campaigns and their reward rules."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.referrals.models import ReferralCampaign, ReferralReward
from campaigns.referrals.services.common import (
    invalid,
    refuse_unknown,
    reward_validate,
    window_check,
)
from scrm.access import Actor
from scrm.audit import audit_record

CAMPAIGN_FIELDS = ("name", "description", "is_active", "starts_at", "ends_at", "oa_appid",
                   "qr_permanent", "landing_url", "success_event", "conversion_days",
                   "inviter_cap", "velocity_per_hour")
REWARD_FIELDS = ("event", "beneficiary", "threshold", "kind", "params")
MAX_REWARDS = 50


def rewards_validate(rewards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reward rules, checked: a known event and beneficiary, milestones for inviters
    with a threshold, and each action valid (the coupon template, tag exist...)."""
    if len(rewards) > MAX_REWARDS:
        raise invalid(_("最多 %(n)s 条奖励规则。") % {"n": MAX_REWARDS}, field="rewards",
                      code="invalid_reward")
    checked = []
    for index, reward in enumerate(rewards):
        field = f"rewards[{index}]"
        refuse_unknown(reward, REWARD_FIELDS)
        event, beneficiary = reward.get("event"), reward.get("beneficiary")
        threshold = reward.get("threshold") or 0
        if event not in ReferralReward.Event.values:
            raise invalid(_("未知的奖励触发：%(e)s") % {"e": event}, field=field,
                          code="invalid_reward")
        if beneficiary not in ReferralReward.Beneficiary.values:
            raise invalid(_("奖励获得者应为邀请人或被邀请人。"), field=field, code="invalid_reward")
        milestone = event == ReferralReward.Event.MILESTONE
        if milestone and (beneficiary != ReferralReward.Beneficiary.INVITER or not (
                isinstance(threshold, int) and threshold >= 1)):
            raise invalid(_("阶梯奖励发给邀请人，且需要成功邀请数（至少 1）。"), field=field,
                          code="invalid_reward")
        if not milestone and threshold:
            raise invalid(_("只有阶梯奖励可以设置成功邀请数。"), field=field, code="invalid_reward")
        params = reward_validate(reward.get("kind"), reward.get("params") or {}, field=field)
        checked.append({"event": event, "beneficiary": beneficiary, "threshold": threshold,
                        "kind": reward["kind"], "params": params})
    return checked


@transaction.atomic
def referral_campaign_save(*, actor: Actor, campaign: ReferralCampaign | None = None,
                           changes: dict[str, Any],
                           rewards: list[dict[str, Any]] | None = None) -> ReferralCampaign:
    """Create a referral campaign or change one; ``rewards``, when given, replaces its rules.
    Each invitee's event is rewarded once, when it is recorded, so rules replaced later never
    give for it again."""
    refuse_unknown(changes, CAMPAIGN_FIELDS)
    creating = campaign is None
    campaign = campaign or ReferralCampaign(tenant_id=actor.tenant.pk, created_by=actor.label)
    for name, value in changes.items():
        setattr(campaign, name, value)
    if not (campaign.name or "").strip():
        raise invalid(_("请填写名称。"), field="name")
    window_check(campaign.starts_at, campaign.ends_at)
    checked = rewards_validate(rewards) if rewards is not None else None
    campaign.save()
    if checked is not None:
        ReferralReward.objects.filter(campaign=campaign).delete()
        ReferralReward.objects.bulk_create([
            ReferralReward(tenant_id=campaign.tenant_id, campaign=campaign, position=i, **reward)
            for i, reward in enumerate(checked)])
    audit_record(actor=actor, action="referrals.create" if creating else "referrals.update",
                 target=campaign, data={"name": campaign.name,
                                        "changes": sorted(changes),
                                        "rewards": len(checked) if checked is not None else None})
    return campaign
