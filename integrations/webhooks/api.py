"""Webhooks API: endpoints (the secret shown once, on create and on rotation), a test ping,
the delivery log and replays."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from integrations.webhooks import selectors
from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services import endpoints as services
from integrations.webhooks.services.ping import endpoint_ping
from integrations.webhooks.services.replay import deliveries_replay_failed, delivery_replay
from scrm.access import WEBHOOKS_MANAGE, WEBHOOKS_READ
from scrm.api.pagination import CursorPagination, paginated_response
from scrm.api.serializers import DateTimeField
from scrm.api.views import TenantApiView
from scrm.events import EVENT_TYPES

SCOPES = {"GET": WEBHOOKS_READ, "*": WEBHOOKS_MANAGE}


class WebhookEndpointOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "event_types", "is_active", "disabled_at",
                  "disabled_reason", "consecutive_failures", "failing_since", "last_success_at",
                  "created_at", "updated_at"]


class WebhookEndpointWithSecretOutput(WebhookEndpointOutput):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret; shown only in this answer.")

    class Meta(WebhookEndpointOutput.Meta):
        fields = [*WebhookEndpointOutput.Meta.fields, "secret"]

    def get_secret(self, _endpoint) -> str:
        return self.context["secret"]


class WebhookEndpointInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(EVENT_TYPES)), allow_empty=False)
    is_active = serializers.BooleanField(required=False)


class WebhookSecretOutput(serializers.Serializer):
    secret = serializers.CharField()


class WebhookPingOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    response_code = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField()
    duration_ms = serializers.IntegerField()
    error = serializers.CharField()


class WebhookDeliveryOutput(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.event_id")
    occurred_at = DateTimeField(source="event.occurred_at")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint_id", "event_id", "event_type", "occurred_at", "status",
                  "attempts", "next_attempt_at", "last_attempt_at", "response_code",
                  "response_excerpt", "duration_ms", "error", "replay_of_id", "created_at"]


class WebhookDeliveryListParams(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    event_type = serializers.ChoiceField(choices=sorted(EVENT_TYPES), required=False)
    event_id = serializers.UUIDField(required=False)
    since = DateTimeField(required=False)
    until = DateTimeField(required=False)


class WebhookReplayInput(serializers.Serializer):
    since = DateTimeField(help_text="Replay the failed deliveries created since.")


class WebhookReplayOutput(serializers.Serializer):
    queued = serializers.IntegerField()


def _missing() -> NotFound:
    return NotFound(_("未找到。"))


class WebhookApiBase(TenantApiView):
    required_scopes = SCOPES

    def get_endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            raise _missing()
        return endpoint


class WebhookEndpointListCreateApi(WebhookApiBase):
    pagination_class = CursorPagination
    @extend_schema(responses=WebhookEndpointOutput(many=True),
                   operation_id="webhook_endpoints_list")
    def get(self, request):
        return paginated_response(self, selectors.endpoint_list(), WebhookEndpointOutput)

    @extend_schema(request=WebhookEndpointInput, responses={201: WebhookEndpointWithSecretOutput},
                   operation_id="webhook_endpoints_create",
                   description="Creates an endpoint; the answer holds its signing secret, "
                               "shown only this once.  409 `endpoint_exists` for a URL that "
                               "already has one (a retried create).")
    def post(self, request):
        data = WebhookEndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            actor=self.actor, name=data.validated_data["name"], url=data.validated_data["url"],
            event_types=data.validated_data["event_types"])
        if data.validated_data.get("is_active") is False:
            endpoint = services.endpoint_update(actor=self.actor, endpoint=endpoint,
                                                changes={"is_active": False})
        output = WebhookEndpointWithSecretOutput(endpoint, context={"secret": secret})
        return Response(output.data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(WebhookApiBase):
    @extend_schema(responses=WebhookEndpointOutput, operation_id="webhook_endpoints_retrieve")
    def get(self, request, endpoint_id: int):
        return Response(WebhookEndpointOutput(self.get_endpoint(endpoint_id)).data)

    @extend_schema(request=WebhookEndpointInput(partial=True), responses=WebhookEndpointOutput,
                   operation_id="webhook_endpoints_update",
                   description="`is_active: true` re-enables a disabled endpoint and clears "
                               "its failure count; `false` stops it (unfinished deliveries "
                               "are given up, and can be replayed later).")
    def patch(self, request, endpoint_id: int):
        endpoint = self.get_endpoint(endpoint_id)
        data = WebhookEndpointInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(actor=self.actor, endpoint=endpoint,
                                            changes=dict(data.validated_data))
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(responses={204: None}, operation_id="webhook_endpoints_delete")
    def delete(self, request, endpoint_id: int):
        services.endpoint_delete(actor=self.actor, endpoint=self.get_endpoint(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretApi(WebhookApiBase):
    @extend_schema(request=None, responses=WebhookSecretOutput,
                   operation_id="webhook_endpoints_rotate_secret",
                   description="A new signing secret, in force at once; shown only here.")
    def post(self, request, endpoint_id: int):
        secret = services.endpoint_secret_rotate(actor=self.actor,
                                                 endpoint=self.get_endpoint(endpoint_id))
        return Response({"secret": secret})


class WebhookEndpointPingApi(WebhookApiBase):
    @extend_schema(request=None, responses=WebhookPingOutput, operation_id="webhook_endpoints_ping",
                   description='Sends a signed `{"type": "ping"}` now and answers with what '
                               "the endpoint replied.")
    def post(self, request, endpoint_id: int):
        result = endpoint_ping(endpoint=self.get_endpoint(endpoint_id))
        return Response({"ok": result.ok, "response_code": result.status,
                         "response_excerpt": result.excerpt,
                         "duration_ms": result.duration_ms, "error": result.error})


class WebhookEndpointReplayApi(WebhookApiBase):
    @extend_schema(request=WebhookReplayInput, responses=WebhookReplayOutput,
                   operation_id="webhook_endpoints_replay",
                   description="Sends again every failed or abandoned delivery of the "
                               "endpoint since `since`; each event once, however often "
                               "this is called.  409 `endpoint_disabled` while it is off.")
    def post(self, request, endpoint_id: int):
        endpoint = self.get_endpoint(endpoint_id)
        data = WebhookReplayInput(data=request.data)
        data.is_valid(raise_exception=True)
        queued = deliveries_replay_failed(actor=self.actor, endpoint=endpoint,
                                          since=data.validated_data["since"])
        return Response({"queued": queued})


class WebhookDeliveryListApi(WebhookApiBase):
    pagination_class = CursorPagination
    @extend_schema(parameters=[WebhookDeliveryListParams],
                   responses=WebhookDeliveryOutput(many=True),
                   operation_id="webhook_deliveries_list")
    def get(self, request):
        params = WebhookDeliveryListParams(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        deliveries = selectors.delivery_list(filters=dict(params.validated_data))
        return paginated_response(self, deliveries, WebhookDeliveryOutput)


class WebhookDeliveryReplayApi(WebhookApiBase):
    @extend_schema(request=None, responses={202: WebhookDeliveryOutput},
                   operation_id="webhook_deliveries_replay",
                   description="Sends the delivery's event to its endpoint again; answers "
                               "with the delivery that will carry it.")
    def post(self, request, delivery_id: int):
        delivery = (WebhookDelivery.objects.select_related("endpoint", "event")
                    .filter(pk=delivery_id).first())
        if delivery is None:
            raise _missing()
        queued = delivery_replay(actor=self.actor, delivery=delivery)
        queued = WebhookDelivery.objects.select_related("event").get(pk=queued.pk)
        return Response(WebhookDeliveryOutput(queued).data, status=status.HTTP_202_ACCEPTED)
