from rest_framework import permissions


class HasTenant(permissions.BasePermission):
    """The request acts for a tenant (an API key, or a signed-in staff member's tenant)."""

    def has_permission(self, request, view):
        return getattr(request, "actor", None) is not None


class HasScope(permissions.BasePermission):
    """Views name ``required_scopes``: {method: scope}, with ``"*"`` as the default."""

    def has_permission(self, request, view):
        actor = getattr(request, "actor", None)
        if actor is None:
            return False
        scopes = getattr(view, "required_scopes", {})
        scope = scopes.get(request.method, scopes.get("*"))
        return scope is None or actor.can(scope)
