"""The relay: outbox events become deliveries, one per subscribed endpoint.

It runs across tenants (one relay serves them all), takes the oldest unrelayed events with
``FOR UPDATE SKIP LOCKED`` so several relays never take the same event, writes their
deliveries with one COPY and stamps the events relayed, all in one transaction: an event is
fanned out exactly once, or not at all and again next time."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from scrm.db.copy import rows_insert
from scrm.models import OutboxEvent
from scrm.tenancy import unscoped_access

RELAY_BATCH = 2000
RELAY_SOON_KEY = "webhooks:relay-queued"
DELIVER_SOON_KEY = "webhooks:deliver-queued"
DELIVERY_COLUMNS = ("tenant_id", "endpoint_id", "event_id", "event_type", "status", "attempts",
                    "next_attempt_at", "response_excerpt", "error", "created_at")


def _queue_once(key: str, task) -> None:
    """Queue ``task`` unless one is already queued and has not started yet (it clears
    ``key`` when it starts, so whatever commits after that queues another)."""
    if settings.CELERY_TASK_ALWAYS_EAGER or cache.add(key, 1, timeout=30):
        task.delay()


def relay_soon() -> None:
    """After a commit that wrote events: relay them now rather than at the next beat."""
    from integrations.webhooks.tasks import webhooks_relay_task

    _queue_once(RELAY_SOON_KEY, webhooks_relay_task)


def deliver_soon() -> None:
    from integrations.webhooks.tasks import webhooks_deliver_task

    _queue_once(DELIVER_SOON_KEY, webhooks_deliver_task)


def _endpoints(tenant_ids: set[int]) -> dict[int, list[tuple[int, frozenset[str], bool]]]:
    found: dict[int, list[tuple[int, frozenset[str], bool]]] = {}
    rows = WebhookEndpoint.objects.unscoped().filter(tenant_id__in=tenant_ids).values_list(
        "pk", "tenant_id", "event_types", "is_active")
    for pk, tenant_id, types, is_active in rows:
        found.setdefault(tenant_id, []).append((pk, frozenset(types), is_active))
    return found


RELAY_SQL = """
WITH batch AS (
    SELECT id, tenant_id, type FROM scrm_outboxevent
    WHERE relayed_at IS NULL ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), fanned AS (
    INSERT INTO webhooks_webhookdelivery (tenant_id, endpoint_id, event_id, event_type, status,
        attempts, next_attempt_at, response_excerpt, error, created_at)
    SELECT b.tenant_id, ep.id, b.id, b.type,
           CASE WHEN ep.is_active THEN 'pending' ELSE 'dead' END, 0,
           CASE WHEN ep.is_active THEN %(now)s::timestamptz END, '',
           CASE WHEN ep.is_active THEN '' ELSE 'endpoint disabled' END, %(now)s
    FROM batch b JOIN webhooks_webhookendpoint ep
        ON ep.tenant_id = b.tenant_id AND ep.event_types ? b.type
    ORDER BY b.id, ep.id
    RETURNING 1
), stamped AS (
    UPDATE scrm_outboxevent e SET relayed_at = %(now)s FROM batch WHERE e.id = batch.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM stamped), (SELECT count(*) FROM fanned)
"""


def relay_batch(*, limit: int = RELAY_BATCH) -> tuple[int, int]:
    """Fan out up to ``limit`` events; returns (events, deliveries).  Deliveries to a
    disabled endpoint are logged as ``dead`` so a replay after re-enabling can send them.
    On PostgreSQL one statement does it all, no event passing through Python."""
    now = timezone.now()
    with unscoped_access("webhook relay"), transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(RELAY_SQL, {"limit": limit, "now": now})
                events, deliveries = cursor.fetchone()
            return events, deliveries
        batch = list(OutboxEvent.objects.unscoped().filter(relayed_at__isnull=True)
                     .order_by("pk").select_for_update(skip_locked=True)
                     .values_list("pk", "tenant_id", "type")[:limit])
        if not batch:
            return 0, 0
        endpoints = _endpoints({tenant_id for _pk, tenant_id, _type in batch})
        rows = [
            (tenant_id, endpoint_id, event_id, type,
             "pending" if active else "dead", 0, now if active else None, "",
             "" if active else "endpoint disabled", now)
            for event_id, tenant_id, type in batch
            for endpoint_id, types, active in endpoints.get(tenant_id, ())
            if type in types
        ]
        rows_insert(model=WebhookDelivery, columns=DELIVERY_COLUMNS, rows=rows)
        OutboxEvent.objects.unscoped().filter(pk__in=[row[0] for row in batch]).update(
            relayed_at=now)
    return len(batch), len(rows)


def relay_pending() -> tuple[int, int]:
    """Relay until the outbox is empty; returns the totals."""
    cache.delete(RELAY_SOON_KEY)
    events = deliveries = 0
    while True:
        batch_events, batch_deliveries = relay_batch()
        events, deliveries = events + batch_events, deliveries + batch_deliveries
        if batch_deliveries:
            transaction.on_commit(deliver_soon)
        if batch_events < RELAY_BATCH:
            return events, deliveries


def outbox_purge(*, days: int | None = None, batch: int = 5000) -> int:
    """Delete relayed events older than WEBHOOK_RETENTION_DAYS with their delivery log."""
    cutoff = timezone.now() - timedelta(days=days if days is not None
                                        else settings.WEBHOOK_RETENTION_DAYS)
    deleted = 0
    with unscoped_access("purge relayed outbox events"):
        while True:
            with transaction.atomic():
                ids = list(OutboxEvent.objects.unscoped()
                           .filter(relayed_at__lt=cutoff).order_by("pk")
                           .values_list("pk", flat=True)[:batch])
                if not ids:
                    return deleted
                WebhookDelivery.objects.unscoped().filter(event_id__in=ids)._raw_delete(
                    WebhookDelivery.objects.db)
                OutboxEvent.objects.unscoped().filter(pk__in=ids)._raw_delete(
                    OutboxEvent.objects.db)
            deleted += len(ids)
