"""Staff sessions: the signed-in user's chosen tenant becomes the request's tenant.

API keys are resolved by DRF authentication instead (``scrm.api``).  Platform superusers in
the admin without a chosen tenant see every tenant, explicitly and logged."""

from scrm import tenancy
from scrm.access import Actor
from scrm.models import StaffMembership

SESSION_KEY = "tenant_id"


def active_membership(request) -> StaffMembership | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = StaffMembership.objects.select_related("tenant").filter(
        user=user, is_active=True, tenant__is_active=True
    )
    chosen = request.session.get(SESSION_KEY)
    membership = memberships.filter(tenant_id=chosen).first() if chosen else None
    return membership or memberships.order_by("tenant_id").first()


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = active_membership(request)
        if membership is not None:
            request.actor = Actor.for_membership(membership)
            request.session[SESSION_KEY] = membership.tenant_id
            with tenancy.tenant_scope(membership.tenant_id):
                return self.get_response(request)
        request.actor = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_superuser:
            with tenancy.unscoped_access(f"platform superuser {user.pk}"):
                return self.get_response(request)
        return self.get_response(request)
