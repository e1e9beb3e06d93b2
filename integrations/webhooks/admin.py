"""Read-only: endpoints are changed through the API or the settings page, which encrypt the
secret and audit the change; deliveries are written by the relay and the sender."""

from django.contrib import admin

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from scrm.access import WEBHOOKS_READ
from scrm.admin import ReadOnlyAdmin


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    view_scope = WEBHOOKS_READ
    list_display = ("name", "url", "is_active", "consecutive_failures", "disabled_at",
                    "last_success_at")
    list_filter = ("is_active",)
    search_fields = ("name", "url")
    fields = ("name", "url", "event_types", "is_active", "disabled_at", "disabled_reason",
              "consecutive_failures", "failing_since", "last_success_at", "created_by",
              "created_at", "updated_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    view_scope = WEBHOOKS_READ
    list_display = ("id", "endpoint", "event_type", "status", "attempts", "response_code",
                    "duration_ms", "created_at")
    list_filter = ("status", "event_type")
    list_select_related = ("endpoint",)
    fields = ("endpoint", "event", "event_type", "status", "attempts", "next_attempt_at",
              "last_attempt_at", "response_code", "response_excerpt", "duration_ms", "error",
              "replay_of", "created_at")
    raw_id_fields = ("event", "replay_of")
    ordering = ("-id",)
