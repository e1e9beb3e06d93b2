from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.views import APIView

from scrm import tenancy
from scrm.api.parsers import JSONParser
from scrm.api.permissions import HasScope, HasTenant


def _refuse_nul_in_query(request) -> None:
    """PostgreSQL text cannot hold NUL, so a query parameter with one is bad input, refused
    before any query (serializer fields refuse it in bodies already)."""
    bad = sorted({key for key, values in request.query_params.lists()
                  if any("\x00" in value for value in values)})
    if bad:
        raise exceptions.ValidationError({key: [_("不能包含空字符（NUL）。")] for key in bad})


class TenantApiView(APIView):
    """Base for tenant APIs: after authentication, the request runs inside its tenant."""

    parser_classes = [JSONParser]
    permission_classes = [HasTenant, HasScope]
    required_scopes: dict[str, str] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _refuse_nul_in_query(request)
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
