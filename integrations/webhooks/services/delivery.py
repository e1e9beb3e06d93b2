"""Sending deliveries: claim the due ones, POST them signed, record what happened, schedule
retries, and disable endpoints that keep failing.

Everything a retry needs lives in the database.  Claiming a delivery counts the attempt and
pushes ``next_attempt_at`` one lease ahead: if the worker dies mid-request, the delivery is
due again when the lease runs out (at-least-once; partners dedupe on the event id)."""

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from yarl import URL

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services.endpoints import endpoint_secret
from integrations.webhooks.services.notices import endpoint_disable
from integrations.webhooks.services.relay import DELIVER_SOON_KEY
from integrations.webhooks.services.sender import Request, Result, Sender
from integrations.webhooks.services.signing import signature_header
from scrm.models import Tenant
from scrm.tenancy import unscoped_access

Status = WebhookDelivery.Status
DUE = (Status.PENDING, Status.FAILED)
LEASE_SECONDS = 120
RUN_SECONDS = 50  # one task's share before it hands over to the next beat


@dataclass
class Claimed:
    delivery_id: int
    tenant_id: int
    endpoint_id: int
    attempts: int
    event_id: str
    event_type: str
    occurred_at: datetime
    data: str  # the event's data as JSON text, put into the body as it is


@dataclass
class Target:
    url: URL
    secret: str
    is_active: bool


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: exponential from
    WEBHOOK_RETRY_BASE_SECONDS, capped at WEBHOOK_RETRY_MAX_SECONDS, with full jitter in the
    upper half so a recovering partner is not hit by every retry at once."""
    ceiling = min(settings.WEBHOOK_RETRY_MAX_SECONDS,
                  settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311


CLAIM_SQL = """
WITH due AS (
    SELECT id FROM webhooks_webhookdelivery
    WHERE status IN ('pending', 'failed') AND next_attempt_at <= %(now)s
    ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE webhooks_webhookdelivery d
    SET attempts = d.attempts + 1, last_attempt_at = %(now)s, next_attempt_at = %(lease)s
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.tenant_id, d.endpoint_id, d.attempts, d.event_id, d.event_type
)
SELECT c.id, c.tenant_id, c.endpoint_id, c.attempts, e.event_id::text, c.event_type,
       e.occurred_at, e.data::text
FROM claimed c JOIN scrm_outboxevent e ON e.id = c.event_id
ORDER BY c.event_id, c.endpoint_id
"""


def deliveries_claim(*, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Take up to ``limit`` due deliveries: one statement on PostgreSQL (lock, count the
    attempt, push the lease, read the events), in event order so each body is built once."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # Walk the due index in order and stop at ``limit``.  A burst leaves the table's
            # statistics behind (a few rows where there are 100,000), and the planner then
            # prefers a bitmap over every due row plus a sort spilling to disk: 5x the cost.
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(CLAIM_SQL, {"now": now, "limit": limit, "lease": lease})
            return [Claimed(*row) for row in cursor.fetchall()]
    with transaction.atomic():
        ids = list(WebhookDelivery.objects.unscoped()
                   .filter(status__in=DUE, next_attempt_at__lte=now)
                   .order_by("next_attempt_at").select_for_update(skip_locked=True)
                   .values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        WebhookDelivery.objects.unscoped().filter(pk__in=ids).update(
            attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=lease)
        rows = WebhookDelivery.objects.unscoped().filter(pk__in=ids).values_list(
            "pk", "tenant_id", "endpoint_id", "attempts", "event__event_id", "event_type",
            "event__occurred_at", "event__data").order_by("event_id", "endpoint_id")
        return [Claimed(pk, tenant_id, endpoint_id, attempts, str(event_id), type, at,
                        json.dumps(data, ensure_ascii=False, separators=(",", ":")))
                for pk, tenant_id, endpoint_id, attempts, event_id, type, at, data in rows]


def body_for(claimed: Claimed, tenant_slug: str) -> bytes:
    """The JSON body partners receive; ``data`` goes in as the database holds it."""
    head = json.dumps({"id": claimed.event_id, "type": claimed.event_type,
                       "occurred_at": claimed.occurred_at.isoformat(), "tenant": tenant_slug},
                      ensure_ascii=False, separators=(",", ":"))
    return f'{head[:-1]},"data":{claimed.data}}}'.encode()


class Run:
    """One sweep: the endpoints and tenants it has met, cached for its batches."""

    def __init__(self) -> None:
        self.targets: dict[int, Target] = {}
        self.slugs: dict[int, str] = {}
        self._body: tuple[str, bytes] = ("", b"")

    def load(self, batch: list[Claimed]) -> None:
        missing = {c.endpoint_id for c in batch} - set(self.targets)
        for endpoint in WebhookEndpoint.objects.unscoped().filter(pk__in=missing):
            self.targets[endpoint.pk] = Target(URL(endpoint.url), endpoint_secret(endpoint),
                                               endpoint.is_active)
        tenants = {c.tenant_id for c in batch} - set(self.slugs)
        self.slugs.update(Tenant.objects.filter(pk__in=tenants).values_list("pk", "slug"))

    def request(self, claimed: Claimed) -> Request:
        target = self.targets[claimed.endpoint_id]
        if self._body[0] != claimed.event_id:  # a batch holds each event's deliveries in a row
            slug = self.slugs.get(claimed.tenant_id, "")
            self._body = (claimed.event_id, body_for(claimed, slug))
        body = self._body[1]
        return Request(target.url, body, {
            "Content-Type": "application/json",
            "X-SCRM-Event": claimed.event_type,
            "X-SCRM-Delivery": str(claimed.delivery_id),
            "X-SCRM-Signature": signature_header(secret=target.secret, body=body),
        })


Outcome = tuple  # (id, status, next_attempt_at, response_code, response_excerpt,
                 #  duration_ms, error), in the order of OUTCOME_FIELDS after the id


def _outcome(claimed: Claimed, result: Result, now: datetime) -> Outcome:
    if result.ok:
        status, next_attempt_at = Status.SUCCEEDED, None
    elif claimed.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        status, next_attempt_at = Status.DEAD, None
    else:
        status = Status.FAILED
        next_attempt_at = now + timedelta(seconds=retry_delay(claimed.attempts))
    return (claimed.delivery_id, status.value, next_attempt_at, result.status, result.excerpt,
            result.duration_ms, result.error)


def results_record(batch: list[Claimed], results: list[Result]) -> None:
    """Write the batch's outcomes and the endpoints' health in one transaction."""
    now = timezone.now()
    outcomes = [_outcome(c, r, now) for c, r in zip(batch, results, strict=True)]
    health: dict[int, list[bool]] = {}
    for claimed, result in zip(batch, results, strict=True):
        health.setdefault(claimed.endpoint_id, []).append(result.ok)
    with transaction.atomic():
        outcomes_write(outcomes)
        # In id order: two senders updating the same endpoints never deadlock.
        for endpoint_id, oks in sorted(health.items()):
            _health_record(endpoint_id=endpoint_id, oks=oks, now=now)


OUTCOME_SQL = """
UPDATE webhooks_webhookdelivery AS d SET status = v.status, next_attempt_at = v.next_attempt_at,
    response_code = v.response_code, response_excerpt = v.response_excerpt,
    duration_ms = v.duration_ms, error = v.error
FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::int[], %s::varchar[],
            %s::int[], %s::varchar[])
     AS v(id, status, next_attempt_at, response_code, response_excerpt, duration_ms, error)
WHERE d.id = v.id
"""


OUTCOME_FIELDS = ("status", "next_attempt_at", "response_code", "response_excerpt",
                  "duration_ms", "error")


def outcomes_write(outcomes: list[Outcome]) -> None:
    """One statement for the batch on PostgreSQL, a column of values per field (Django's
    ``bulk_update`` builds a CASE per field and row, and cost more than the HTTP);
    ``bulk_update`` elsewhere."""
    if connection.vendor != "postgresql":
        WebhookDelivery.objects.unscoped().bulk_update(
            [WebhookDelivery(pk, **dict(zip(OUTCOME_FIELDS, values, strict=True)))
             for pk, *values in outcomes], OUTCOME_FIELDS)
        return
    with connection.cursor() as cursor:
        cursor.execute(OUTCOME_SQL, [list(column) for column in zip(*outcomes, strict=True)])


def _health_record(*, endpoint_id: int, oks: list[bool], now: datetime) -> None:
    endpoints = WebhookEndpoint.objects.unscoped().filter(pk=endpoint_id)
    if any(oks):  # it answers: whatever failed in the same batch was about those events
        endpoints.update(consecutive_failures=0, failing_since=None, last_success_at=now)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    endpoints.update(consecutive_failures=F("consecutive_failures") + len(oks))
    endpoint = endpoints.filter(
        is_active=True,
        consecutive_failures__gte=settings.WEBHOOK_DISABLE_AFTER_FAILURES,
        failing_since__lte=now - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS),
    ).first()
    if endpoint is not None:
        endpoint_disable(endpoint=endpoint, now=now)


def _skip_inactive(run: Run, batch: list[Claimed]) -> list[Claimed]:
    """Deliveries claimed for an endpoint that was disabled meanwhile are given up."""
    inactive = [c.delivery_id for c in batch if not run.targets[c.endpoint_id].is_active]
    if inactive:
        WebhookDelivery.objects.unscoped().filter(pk__in=inactive).update(
            status=Status.DEAD, next_attempt_at=None, error="endpoint disabled")
    return [c for c in batch if run.targets[c.endpoint_id].is_active]


def deliveries_send_due(*, batch_size: int | None = None,
                        seconds: float = RUN_SECONDS) -> int:
    """Send due deliveries until none is left or ``seconds`` have passed; returns how many
    were attempted.  The next batch is claimed while the previous one is on the wire."""
    cache.delete(DELIVER_SOON_KEY)
    batch_size = batch_size or settings.WEBHOOK_BATCH_SIZE
    deadline = timezone.now() + timedelta(seconds=seconds)
    run, sent = Run(), 0
    with unscoped_access("webhook delivery"), Sender(
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            connections_per_host=settings.WEBHOOK_CONNECTIONS_PER_ENDPOINT,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS) as sender:
        in_flight: tuple[list[Claimed], Any] | None = None
        while True:
            claimed = deliveries_claim(limit=batch_size) if timezone.now() < deadline else []
            batch = claimed
            if claimed:
                run.load(claimed)
                batch = _skip_inactive(run, claimed)
            if in_flight is not None:
                results_record(in_flight[0], in_flight[1].result())
                sent += len(in_flight[0])
                in_flight = None
            if not claimed:
                return sent
            if not batch:
                continue
            in_flight = (batch, sender.submit([run.request(c) for c in batch]))

