"""Manual replay: a delivery again, or every failed one of an endpoint since a time.

A replay is a new delivery of the same event (the log keeps the old one).  Replaying is
idempotent: an event that already has an unfinished or successful delivery to the endpoint
after the one replayed is not queued again."""

from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services.relay import deliver_soon
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record

Status = WebhookDelivery.Status


def _check_active(endpoint: WebhookEndpoint) -> None:
    if not endpoint.is_active:
        raise ApplicationError(_("端点已停用，请先启用再重发。"), code="endpoint_disabled",
                               status_code=409)


def _superseded():
    """Deliveries with a later one of the same event to the same endpoint still going or
    through."""
    return Exists(WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"), event_id=OuterRef("event_id"),
        pk__gt=OuterRef("pk"), status__in=[Status.PENDING, Status.FAILED, Status.SUCCEEDED]))


def _queue(originals: list[WebhookDelivery]) -> list[WebhookDelivery]:
    now = timezone.now()
    copies = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(tenant_id=d.tenant_id, endpoint_id=d.endpoint_id, event_id=d.event_id,
                        event_type=d.event_type, status=Status.PENDING, next_attempt_at=now,
                        replay_of_id=d.pk)
        for d in originals
    ])
    if copies:
        transaction.on_commit(deliver_soon)
    return copies


@transaction.atomic
def delivery_replay(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send ``delivery``'s event to its endpoint again.  One still waiting for a retry is
    sent now; a finished one (succeeded or given up) gets a new delivery, unless a later one
    of the same event is already on its way, which is returned instead."""
    _check_active(delivery.endpoint)
    if delivery.status in (Status.PENDING, Status.FAILED):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        transaction.on_commit(deliver_soon)
        return delivery
    later = (WebhookDelivery.objects.filter(endpoint_id=delivery.endpoint_id,
                                            event_id=delivery.event_id, pk__gt=delivery.pk,
                                            status__in=[Status.PENDING, Status.FAILED])
             .order_by("-pk").first())
    if later is not None:
        return later
    (copy,) = _queue([delivery])
    audit_record(actor=actor, action="webhook.replayed", target=delivery.endpoint,
                 data={"delivery_ids": [delivery.pk]})
    return copy


@transaction.atomic
def deliveries_replay_failed(*, actor: Actor, endpoint: WebhookEndpoint,
                             since: datetime) -> int:
    """Send again every failed or abandoned delivery of ``endpoint`` created since
    ``since``: those waiting for a retry now, the abandoned ones as new deliveries (each
    event once).  Returns how many are on their way."""
    _check_active(endpoint)
    now = timezone.now()
    retrying = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.FAILED,
                                              created_at__gte=since).update(next_attempt_at=now)
    dead = list(WebhookDelivery.objects.filter(
        endpoint=endpoint, status=Status.DEAD, created_at__gte=since,
    ).exclude(_superseded()).order_by("pk"))
    unique = list({d.event_id: d for d in reversed(dead)}.values())
    copies = _queue(unique)
    if retrying:
        transaction.on_commit(deliver_soon)
    audit_record(actor=actor, action="webhook.replayed", target=endpoint,
                 data={"since": since.isoformat(), "count": retrying + len(copies)})
    return retrying + len(copies)
