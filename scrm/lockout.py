"""Sign-in lockout (django-axes): after ``LOGIN_FAILURE_LIMIT`` wrong passwords for one login
from one address, that login is refused from there for ``LOGIN_LOCKOUT_MINUTES`` (counted
from the last try, so hammering on keeps it locked).  It covers every password sign-in: the
dashboard, the guide's page and the admin.  Owners unlock their staff from the staff page,
superusers any login in the admin (访问尝试).  Failed sign-ins are already in the audit log
(scrm.auth_audit); a lockout adds one entry per tenant of the login."""

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _

from scrm.access import Actor
from scrm.audit import audit_record, audit_write
from scrm.models import StaffMembership
from scrm.tenancy import unscoped_access


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    until = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    return _("登录失败次数过多，该账号已被暂时锁定。请在 %(minutes)s 分钟后（%(time)s 之后）"
             "再试，或请品牌所有者解除锁定。") % {"minutes": minutes,
                                             "time": time_format(until, "H:i")}


def lockout_response(request, original_response=None, credentials=None):
    """The sign-in page again, with the lockout and when to try again (429, Retry-After)."""
    guide = request.path.startswith("/guide/")
    response = render(request, "scrm/login.html", {
        "guide": guide, "lockout": lockout_message(), "next": request.POST.get("next", ""),
        "form": {"username": {"value": (credentials or {}).get("username", "")}},
    }, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def login_locked(username: str) -> bool:
    """Whether the login is locked out from some address right now."""
    return AccessAttempt.objects.filter(
        username=username, failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
        attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
    ).exists()


@transaction.atomic
def staff_unlock(*, actor: Actor, membership: StaffMembership, ip: str | None = None) -> int:
    """Lift the lockout of a staff member's login; returns how many locks were lifted."""
    username = membership.user.get_username()
    lifted = reset(username=username)
    audit_record(actor=actor, action="auth.unlock", target=membership,
                 data={"username": username, "lifted": lifted}, ip=ip)
    return lifted


@receiver(user_locked_out, dispatch_uid="scrm.lockout.audit")
def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    user = get_user_model().objects.filter(username__iexact=username or "").first()
    if user is None:
        return
    with unscoped_access("lockout audit: the login's tenants"):
        memberships = list(StaffMembership.objects.filter(user=user).only("pk", "tenant_id"))
    for membership in memberships:
        audit_write(tenant_id=membership.tenant_id, actor_label="anonymous",
                    action="auth.locked_out", target_type="staffmembership",
                    target_id=membership.pk, data={"username": username[:150]}, ip=ip_address)
