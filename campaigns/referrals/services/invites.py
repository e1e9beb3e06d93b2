"""Invites: one per campaign and inviter, with an unguessable code, the H5 link
``{PUBLIC_BASE_URL}/r/<code>/`` and, when asked, an OA QR code carrying ``ref_<code>``.

The code starts with the tenant's id (base 36) so the public link finds its tenant without
looking across tenants; the rest is 80 random bits."""

import base64
import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from campaigns.referrals.models import ReferralCampaign, ReferralClick, ReferralInvite
from campaigns.referrals.qr import invite_qr_provider
from campaigns.referrals.services.common import member_current
from members.models import Member
from scrm.access import Actor
from scrm.api.errors import Conflict

CODE_PATTERN = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{16})$")
SCENE_PREFIX = "ref_"
QR_MAX_SECONDS = 30 * 24 * 3600  # WeChat's longest temporary QR code
QR_MIN_SECONDS = 60
QR_RENEW_BEFORE = timedelta(days=1)  # a temporary code this close to expiry is made again
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = DIGITS[digit] + text
        if not number:
            return text


def invite_code_new(tenant_id: int) -> str:
    token = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters
    return f"{_base36(tenant_id)}-{token}"


def invite_code_tenant(code: str) -> int | None:
    """The tenant an invite code belongs to, or None when it is not a code at all."""
    match = CODE_PATTERN.match(code or "")
    return int(match.group(1), 36) if match else None


def invite_link(invite: ReferralInvite) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/r/{invite.code}/"


def invite_scene(invite: ReferralInvite, generation: int) -> str:
    """The QR scene: ``ref_<code>`` for the first code, ``ref_<code>_<n>`` for the ones that
    replace an expired temporary code (each scene is a channel code of its own)."""
    suffix = "" if generation <= 1 else f"_{generation}"
    return f"{SCENE_PREFIX}{invite.code}{suffix}"


def scene_code(scene_or_code: str) -> str:
    """The invite code in a scene (or a scene without its prefix)."""
    return scene_or_code.removeprefix(SCENE_PREFIX).split("_", 1)[0]


def campaign_require_open(campaign: ReferralCampaign, now: datetime) -> None:
    if not campaign.is_open(now):
        raise Conflict(_("裂变活动未在进行中。"), code="campaign_not_running")


@transaction.atomic
def referral_invite_get(*, actor: Actor, campaign: ReferralCampaign, inviter: Member,
                        now: datetime | None = None) -> tuple[ReferralInvite, bool]:
    """The inviter's invite for the campaign, made the first time it is asked for while
    the campaign runs; returns it and whether it was made now."""
    inviter = member_current(inviter)
    existing = ReferralInvite.objects.filter(campaign=campaign, inviter=inviter).first()
    if existing is not None:
        return existing, False
    campaign_require_open(campaign, now or timezone.now())
    try:
        with transaction.atomic():
            invite = ReferralInvite.objects.create(tenant_id=campaign.tenant_id,
                                                   campaign=campaign, inviter=inviter,
                                                   code=invite_code_new(campaign.tenant_id))
    except IntegrityError:  # the same invite, asked for twice at once
        return ReferralInvite.objects.get(campaign=campaign, inviter=inviter), False
    return invite, True


def _qr_current(invite: ReferralInvite, campaign: ReferralCampaign, now: datetime) -> bool:
    if not invite.qr_ticket:
        return False
    if invite.qr_expires_at is None:
        return True
    lasts_the_campaign = campaign.ends_at is not None and invite.qr_expires_at >= campaign.ends_at
    return lasts_the_campaign or invite.qr_expires_at > now + QR_RENEW_BEFORE


def _expire_seconds(campaign: ReferralCampaign, now: datetime) -> int | None:
    if campaign.qr_permanent:
        return None
    seconds = QR_MAX_SECONDS
    if campaign.ends_at is not None:
        seconds = min(seconds, int((campaign.ends_at - now).total_seconds()))
    return max(seconds, QR_MIN_SECONDS)


@transaction.atomic
def referral_invite_qr(*, actor: Actor, invite: ReferralInvite,
                       now: datetime | None = None) -> ReferralInvite:
    """The invite with its QR code, made through the registered provider when it has none,
    or when its temporary code is about to expire (409 ``qr_unavailable`` when no provider
    can make one, ``campaign_not_running`` once the campaign is over)."""
    now = now or timezone.now()
    # Locked, so two requests at once make one code.
    invite = ReferralInvite.objects.select_for_update().select_related("campaign").get(
        pk=invite.pk)
    campaign = invite.campaign
    if _qr_current(invite, campaign, now):
        return invite
    campaign_require_open(campaign, now)
    provider = invite_qr_provider()
    if provider is None:
        raise Conflict(_("未接入公众号，无法生成邀请二维码。"), code="qr_unavailable")
    generation = invite.qr_generation + 1
    qr = provider(actor=actor, invite=invite, campaign=campaign,
                  scene=invite_scene(invite, generation),
                  expire_seconds=_expire_seconds(campaign, now))
    invite.qr_ticket, invite.qr_url, invite.qr_image_url = qr.ticket, qr.url, qr.image_url
    invite.qr_expires_at, invite.qr_channel_code_id = qr.expires_at, qr.channel_code_id
    invite.qr_generation = generation
    invite.save(update_fields=["qr_ticket", "qr_url", "qr_image_url", "qr_expires_at",
                               "qr_channel_code_id", "qr_generation"])
    return invite


def referral_click(*, invite: ReferralInvite, ip: str, user_agent: str,
                   at: datetime | None = None) -> ReferralClick:
    """A visit of the invite's H5 link (the address kept only as a keyed digest)."""
    ReferralInvite.objects.filter(pk=invite.pk).update(clicks=F("clicks") + 1)
    digest = salted_hmac("referrals.click", ip or "").hexdigest()[:32] if ip else ""
    return ReferralClick.objects.create(tenant_id=invite.tenant_id, invite=invite,
                                        occurred_at=at or timezone.now(), ip_hash=digest,
                                        user_agent=(user_agent or "")[:255])
