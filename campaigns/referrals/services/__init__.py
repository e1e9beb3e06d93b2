"""Every write of referrals and lotteries: ``campaigns`` (referral campaigns and their
reward rules), ``invites`` (codes, links, QR codes, clicks), ``attribution`` (who brought
whom, registrations and first purchases, review), ``rewards``, ``merge`` (member merges) and
``lottery`` (lotteries, prizes, product codes, draws)."""

from campaigns.referrals.services.attribution import (
    referral_attribute,
    referral_attribution_review,
    referral_progress,
    referral_scan,
)
from campaigns.referrals.services.campaigns import referral_campaign_save
from campaigns.referrals.services.invites import (
    referral_click,
    referral_invite_get,
    referral_invite_qr,
)
from campaigns.referrals.services.lottery import (
    DrawResult,
    lottery_codes_add,
    lottery_codes_generate,
    lottery_draw,
    lottery_save,
)
from campaigns.referrals.services.merge import referrals_member_merge

__all__ = [
    "DrawResult",
    "lottery_codes_add",
    "lottery_codes_generate",
    "lottery_draw",
    "lottery_save",
    "referral_attribute",
    "referral_attribution_review",
    "referral_campaign_save",
    "referral_click",
    "referral_invite_get",
    "referral_invite_qr",
    "referral_progress",
    "referral_scan",
    "referrals_member_merge",
]
