from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "integrations.webhooks"
    label = "webhooks"
    verbose_name = _("Webhook 推送")

    def ready(self) -> None:
        from integrations.webhooks.services import endpoints, relay
        from scrm import events

        events.subscriptions_source_set(endpoints.endpoint_types_subscribed)
        events.relay_hook_add(relay.relay_soon)
