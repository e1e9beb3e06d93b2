"""Searching the audit log: tenant owners only (``audit:read``)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from scrm.access import AUDIT_READ
from scrm.api.pagination import CursorPagination, paginated_response
from scrm.api.serializers import DateTimeField
from scrm.api.views import TenantApiView
from scrm.audit import audit_list


class AuditFilterInput(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=64,
                                   help_text='Exact action, or a prefix ending in "." (auth.)')
    actor = serializers.CharField(required=False, max_length=64,
                                  help_text="staff:<id>, api_key:<prefix>, system …")
    target_type = serializers.CharField(required=False, max_length=32)
    target_id = serializers.IntegerField(required=False)
    since = DateTimeField(required=False)
    until = DateTimeField(required=False)


class AuditEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.IntegerField(allow_null=True)
    data = serializers.JSONField()
    ip = serializers.CharField(allow_null=True)


class AuditListApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": AUDIT_READ}

    @extend_schema(
        parameters=[
            *[OpenApiParameter(name, str) for name in ("action", "actor", "target_type")],
            OpenApiParameter("target_id", int),
            OpenApiParameter("since", str, description="ISO 8601 time, inclusive"),
            OpenApiParameter("until", str, description="ISO 8601 time, exclusive"),
        ],
        responses=AuditEntryOutput(many=True), operation_id="audit_list",
    )
    def get(self, request):
        filters = AuditFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated_response(self, audit_list(filters=filters.validated_data),
                                  AuditEntryOutput)
