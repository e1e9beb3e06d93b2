from rest_framework.views import APIView

from scrm import tenancy
from scrm.api.parsers import JSONParser
from scrm.api.permissions import HasScope, HasTenant


class TenantApiView(APIView):
    """Base for tenant APIs: after authentication, the request runs inside its tenant."""

    parser_classes = [JSONParser]
    permission_classes = [HasTenant, HasScope]
    required_scopes: dict[str, str] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._tenant_scope = tenancy.tenant_scope(request.actor.tenant)
        self._tenant_scope.__enter__()

    def dispatch(self, request, *args, **kwargs):
        # Leave the tenant here rather than in finalize_response, which DRF skips when a
        # handler raises an error it does not handle: the thread's next request must not
        # start inside this tenant.
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            scope = getattr(self, "_tenant_scope", None)
            if scope is not None:
                self._tenant_scope = None
                scope.__exit__(None, None, None)

    @property
    def actor(self):
        return self.request.actor
