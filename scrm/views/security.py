"""Staff's own sign-in security (two-step verification), its second step at sign-in, and
owners lifting a staff member's sign-in lockout."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from scrm import access, lockout, two_factor
from scrm.api.errors import ApplicationError
from scrm.models import StaffMembership
from scrm.web import client_ip, error_text, page


@login_required
def account_security(request: HttpRequest) -> HttpResponse:
    """Turn two-step verification on (scan, confirm a code), get new backup codes, or off."""
    user, context = request.user, {}
    if request.method == "POST":
        action, token = request.POST.get("action", ""), request.POST.get("token", "")
        try:
            if action == "start":
                two_factor.totp_enrol_start(user=user)
            elif action == "confirm":
                context["backup_codes"] = two_factor.totp_enrol_confirm(request=request,
                                                                         token=token)
                messages.success(request, _("两步验证已开启。"))
            elif action == "backup-codes" and two_factor.two_factor_enabled(user):
                context["backup_codes"] = two_factor.backup_codes_regenerate(user=user)
            elif action == "disable":
                two_factor.two_factor_disable(request=request, token=token)
                messages.success(request, _("两步验证已关闭。"))
                return redirect("web:account-security")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if pending is not None and "backup_codes" not in context:
        context.update(qr=two_factor.totp_qr_data_uri(pending),
                       secret=two_factor.totp_secret(pending))
    context["enabled"] = two_factor.two_factor_enabled(user)
    return render(request, "scrm/account_security.html", context)


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator or a backup code."""
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = "/"
    if request.user.is_verified() or not request.session.get(two_factor.SESSION_KEY):
        return redirect(next_url)
    error = ""
    if request.method == "POST":
        if two_factor.two_factor_verify(request=request, token=request.POST.get("token", "")):
            return redirect(next_url)
        error = _("验证码不正确或已用过，请重试。")
    return render(request, "scrm/two_factor_verify.html", {"next": next_url, "error": error},
                  status=400 if error else 200)


@require_POST
@page(access.STAFF_MANAGE)
def staff_unlock(request: HttpRequest, staff_id: int) -> HttpResponse:
    membership = StaffMembership.objects.filter(tenant=request.actor.tenant, pk=staff_id
                                                ).select_related("user").first()
    if membership is None:
        raise Http404
    lockout.staff_unlock(actor=request.actor, membership=membership, ip=client_ip(request))
    messages.success(request, _("已解除 %(name)s 的登录锁定。") % {"name": membership})
    return redirect("web:staff")
