from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.middleware import SESSION_KEY
from scrm.models import StaffMembership


@require_POST
@login_required
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's tenants the session's tenant.  A tenant they do not
    belong to answers 404, like anything else that is not theirs."""
    try:
        tenant_id = int(request.POST.get("tenant_id", ""))
    except ValueError as exc:
        raise Http404 from exc
    membership = (
        StaffMembership.objects.select_related("tenant")
        .filter(user=request.user, tenant_id=tenant_id, is_active=True, tenant__is_active=True)
        .first()
    )
    if membership is None:
        raise Http404
    request.session[SESSION_KEY] = membership.tenant_id
    messages.success(request, _("已切换到租户：%(name)s") % {"name": membership.tenant.name})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return redirect(target)
