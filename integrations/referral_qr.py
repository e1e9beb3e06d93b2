"""The QR codes of referral invites (裂变): an OA parametric QR code, made as a channel code
(channel "裂变", the campaign's name) whose scene, ``ref_<code>``, the callback dispatcher
hands to ``campaigns.referrals`` (see ``services/dispatch.py``)."""

from urllib.parse import quote

from django.conf import settings
from django.utils.translation import gettext as _

from campaigns.referrals.qr import InviteQr, invite_qr_provider_register
from integrations.models import ChannelCode, OAApp
from integrations.services.channels import channel_code_create
from scrm.api.errors import Conflict


def _image_url(ticket: str) -> str:
    base = settings.WECHAT_API_BASE_URL.rstrip("/")
    host = f"{base}/mp.weixin.qq.com" if base else "https://mp.weixin.qq.com"
    return f"{host}/cgi-bin/showqrcode?ticket={quote(ticket)}"


def invite_qr_create(*, actor, invite, campaign, scene: str,
                     expire_seconds: int | None) -> InviteQr:
    """The invite's QR code on the campaign's OA (or the tenant's first connected one)."""
    apps = OAApp.objects.filter(is_active=True)
    app = (apps.filter(appid=campaign.oa_appid) if campaign.oa_appid else apps.order_by("pk")
           ).first()
    if app is None:
        raise Conflict(_("未接入公众号，无法生成邀请二维码。"), code="qr_unavailable")
    code = channel_code_create(actor=actor, kind=ChannelCode.Kind.OA_QR,
                               name=f"裂变邀请 {invite.code}"[:64], oa_app=app, channel="裂变",
                               campaign=campaign.name[:64], expire_seconds=expire_seconds,
                               scene=scene)
    return InviteQr(ticket=code.ticket, url=code.url, image_url=_image_url(code.ticket),
                    expires_at=code.expires_at, channel_code_id=code.pk)


def register() -> None:
    invite_qr_provider_register(invite_qr_create)
