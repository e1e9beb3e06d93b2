"""The invite's H5 link, ``/r/<code>/``: the click is recorded, then the visitor goes to the
campaign's landing page (with ``ref=<code>``), or sees the built-in one with the inviter's QR
code to long-press and follow (the follow is what attributes them)."""

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns.referrals.models import ReferralInvite
from campaigns.referrals.services import referral_click, referral_invite_qr
from campaigns.referrals.services.common import system_actor
from campaigns.referrals.services.invites import invite_code_tenant
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import tenant_scope


def _with_ref(url: str, code: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"ref": code})))


def _masked(name: str) -> str:
    return f"{name[0]}{'*' * min(len(name) - 1, 2)}" if len(name) > 1 else (name or "")


@require_GET
def invite_landing(request: HttpRequest, code: str) -> HttpResponse:
    tenant_id = invite_code_tenant(code)
    if tenant_id is None or not Tenant.objects.filter(pk=tenant_id, is_active=True).exists():
        raise Http404
    with tenant_scope(tenant_id):
        invite = ReferralInvite.objects.select_related("campaign", "inviter").filter(
            code=code).first()
        if invite is None:
            raise Http404
        now = timezone.now()
        referral_click(invite=invite, ip=request.META.get("REMOTE_ADDR", ""),
                       user_agent=request.headers.get("User-Agent", ""), at=now)
        campaign = invite.campaign
        if campaign.landing_url:
            return redirect(_with_ref(campaign.landing_url, code))
        problem = ""
        if campaign.is_open(now):
            try:
                invite = referral_invite_qr(actor=system_actor(tenant_id), invite=invite,
                                            now=now)
            except ApplicationError as exc:
                problem = str(exc.detail)
        return render(request, "referrals/landing.html", {
            "campaign": campaign, "invite": invite, "running": campaign.is_open(now),
            "inviter": _masked(invite.inviter.name), "problem": problem})
