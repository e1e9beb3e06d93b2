"""Optional two-factor sign-in for staff (django-otp): a TOTP authenticator app, with static
backup codes for when the phone is lost.

Staff turn it on from their account page (scan the QR code, confirm one code).  From then
on every password sign-in, the dashboard's, the guide's and the admin's, ends at the code
page: until a code is given the session can open nothing else (``TwoFactorMiddleware``).
Whether a login needs the code is noted in its session when it signs in, so requests cost no
query for it."""

import base64
from urllib.parse import quote

import segno
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from scrm.api.errors import ApplicationError

SESSION_KEY = "scrm_otp_required"
BACKUP_CODES = 10
DEVICE_NAME = "authenticator"
# Paths an unverified session may still open: the code page, sign-out, assets, language.
OPEN_PATHS = ("/login/verify/", "/logout/", "/admin/logout/", "/static/", "/i18n/")


def two_factor_enabled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def totp_enrol_start(*, user) -> TOTPDevice:
    """A fresh, unconfirmed device (any earlier unconfirmed one is dropped)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_qr_data_uri(device: TOTPDevice) -> str:
    svg = segno.make(device.config_url, error="m").svg_inline(scale=5)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed in (base32, in groups of four)."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


@transaction.atomic
def totp_enrol_confirm(*, request, token: str) -> list[str]:
    """Confirm the pending device with a code from the app; returns the backup codes (shown
    once).  The current session counts as verified."""
    user = request.user
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None:
        raise ApplicationError(_("请先开始绑定验证器。"), code="otp_not_started")
    if not device.verify_token(token.strip()):
        raise ApplicationError(_("验证码不正确，请查看验证器中的最新验证码。"), code="otp_invalid")
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    otp_login(request, device)
    request.session[SESSION_KEY] = True
    return backup_codes_regenerate(user=user)


@transaction.atomic
def backup_codes_regenerate(*, user) -> list[str]:
    """New backup codes; the old ones stop working.  Each works once."""
    device, _created = StaticDevice.objects.get_or_create(user=user, name="backup",
                                                          defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def two_factor_disable(*, request, token: str) -> None:
    """Turn it off; asks for a current code (or a backup code) so a left-open session
    cannot."""
    if _device_matching(request.user, token) is None:
        raise ApplicationError(_("验证码不正确。"), code="otp_invalid")
    TOTPDevice.objects.filter(user=request.user).delete()
    StaticDevice.objects.filter(user=request.user).delete()
    request.session[SESSION_KEY] = False


def two_factor_verify(*, request, token: str) -> bool:
    """The sign-in's second step: a code from the app or an unused backup code."""
    device = _device_matching(request.user, token)
    if device is None:
        return False
    otp_login(request, device)
    return True


def _device_matching(user, token: str):
    """The confirmed device that accepts ``token``: six digits are the app's code, anything
    else a backup code, so a backup code never counts as a wrong code against the app (each
    wrong try doubles the wait before the next one, django-otp's throttling)."""
    token = token.strip().replace(" ", "")
    model = TOTPDevice if len(token) == 6 and token.isdigit() else StaticDevice
    for device in model.objects.filter(user=user, confirmed=True):
        verified = verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None


@receiver(user_logged_in, dispatch_uid="scrm.two_factor.login")
def _note_requirement(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = two_factor_enabled(user)


class TwoFactorMiddleware:
    """A signed-in session that still owes its code reaches only the code page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._owes_code(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "otp_required",
                                     "message": _("请先完成两步验证。")}, status=401)
            target = reverse("web:two-factor-verify")
            return redirect(f"{target}?next={quote(request.get_full_path())}")
        return self.get_response(request)

    @staticmethod
    def _owes_code(request) -> bool:
        session = getattr(request, "session", None)
        if session is None or not session.get(SESSION_KEY):
            return False
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return False
        return not request.path.startswith(OPEN_PATHS)
