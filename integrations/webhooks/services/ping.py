"""A test ping: one signed POST to an endpoint, now, answered with what came back.  It is
not an outbox event and is not retried; partners recognise it by ``type == "ping"``."""

import json
import uuid

from django.conf import settings
from django.utils import timezone

from integrations.webhooks.models import WebhookEndpoint
from integrations.webhooks.services.endpoints import endpoint_secret
from integrations.webhooks.services.sender import Request, Result, Sender
from integrations.webhooks.services.signing import signature_header


def endpoint_ping(*, endpoint: WebhookEndpoint) -> Result:
    body = json.dumps({
        "id": str(uuid.uuid4()), "type": "ping", "occurred_at": timezone.now().isoformat(),
        "tenant": endpoint.tenant.slug, "data": {"endpoint_id": endpoint.pk},
    }, separators=(",", ":")).encode()
    request = Request(endpoint.url, body, {
        "Content-Type": "application/json", "X-SCRM-Event": "ping", "X-SCRM-Delivery": "ping",
        "X-SCRM-Signature": signature_header(secret=endpoint_secret(endpoint), body=body),
    })
    with Sender(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, connections_per_host=1,
                allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS) as sender:
        (result,) = sender.send([request])
    return result
