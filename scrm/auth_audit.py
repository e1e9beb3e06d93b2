"""Sign-ins, failed sign-ins and sign-outs in the audit log, from Django's auth signals: the
dashboard, the guide's page, the admin and the guide's WeCom OAuth all sign in through
``django.contrib.auth.login``.  A login may belong to several tenants; each of them gets the
entry, so every tenant's owners see their staff's sessions."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from scrm.audit import audit_write
from scrm.models import StaffMembership
from scrm.tenancy import tenant_scope, unscoped_access

# URL names of the sign-in views, for the ``via`` of an entry.
VIA = {
    "admin:login": "admin",
    "web:login": "web",
    "web:guide-login": "guide",
    "guide-oauth-callback": "wecom_oauth",
}


def _via(request) -> str:
    match = getattr(request, "resolver_match", None) if request is not None else None
    if match is None:
        return "other"
    return VIA.get(match.view_name, VIA.get(match.url_name or "", match.view_name))


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _record(*, user, action: str, request, data: dict | None = None,
            actor_label: str | None = None) -> None:
    if user is None or user.pk is None:
        return
    with unscoped_access("sign-in audit: the login's tenants"):
        memberships = list(StaffMembership.objects.filter(user=user).only("pk", "tenant_id"))
    for membership in memberships:
        with tenant_scope(membership.tenant_id):
            audit_write(
                tenant_id=membership.tenant_id,
                actor_label=actor_label or f"staff:{membership.pk}", action=action,
                target_type="staffmembership", target_id=membership.pk,
                data={"via": _via(request), **(data or {})}, ip=_ip(request),
            )


@receiver(user_logged_in, dispatch_uid="scrm.audit.login")
def _logged_in(sender, request, user, **kwargs) -> None:
    _record(user=user, action="auth.login", request=request)


@receiver(user_logged_out, dispatch_uid="scrm.audit.logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    _record(user=user, action="auth.logout", request=request)


@receiver(user_login_failed, dispatch_uid="scrm.audit.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Only attempts on a known login can be placed in a tenant; others are not recorded."""
    username = (credentials or {}).get("username") or ""
    user = get_user_model().objects.filter(username__iexact=username).first() if username else None
    _record(user=user, action="auth.login_failed", request=request,
            data={"username": username[:150]}, actor_label="anonymous")
