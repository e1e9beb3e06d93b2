"""A failing endpoint is retried with growing delays, disabled after sustained failures
(with notice), and replayed once it is back."""

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services.endpoints import endpoint_update
from integrations.webhooks.services.replay import deliveries_replay_failed, delivery_replay
from members.services.members import member_upsert
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory
from tests.webhooks.conftest import pump


def new_member(actor, n: int):
    with tenant_scope(actor.tenant):
        return member_upsert(actor=actor, identities=[{"kind": "phone",
                                                       "value": f"1370000{n:04d}"}])[0]


def delivery(tenant) -> WebhookDelivery:
    with tenant_scope(tenant):
        return WebhookDelivery.objects.get()


def time_passes(tenant) -> None:
    """Whatever retry is scheduled is due now."""
    with tenant_scope(tenant):
        WebhookDelivery.objects.filter(next_attempt_at__isnull=False).update(
            next_attempt_at=timezone.now())


def test_a_failing_endpoint_is_retried_later_and_later_until_it_answers(actor, endpoint,
                                                                        receiver):
    receiver.status = 503
    new_member(actor, 1)
    delays = []
    for attempt in range(1, 4):
        assert pump() == 1
        failed = delivery(actor.tenant)
        assert (failed.status, failed.attempts, failed.response_code) == ("failed", attempt, 503)
        assert failed.response_excerpt == "upstream is down"
        delays.append((failed.next_attempt_at - failed.last_attempt_at).total_seconds())
        assert pump() == 0  # not due yet
        time_passes(actor.tenant)
    # 30 s doubling, with jitter in the upper half of each step
    assert 15 <= delays[0] <= 30 < delays[1] <= 60 < delays[2] <= 120
    receiver.status = 200
    assert pump() == 1
    done = delivery(actor.tenant)
    assert (done.status, done.attempts, done.response_code, done.next_attempt_at) == (
        "succeeded", 4, 200, None)
    assert len(receiver.received) == 1
    with tenant_scope(actor.tenant):
        endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_an_unreachable_endpoint_is_logged_as_such(actor, endpoint, receiver):
    with tenant_scope(actor.tenant):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/down")
    new_member(actor, 2)
    pump()
    failed = delivery(actor.tenant)
    assert (failed.status, failed.response_code) == ("failed", None)
    assert "Connect" in failed.error


def test_sustained_failures_disable_the_endpoint_with_notice(
        actor, endpoint, receiver, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 2
    StaffFactory(tenant=actor.tenant, role=Role.OWNER, user__email="owner@acme.cn")
    StaffFactory(tenant=actor.tenant, role=Role.ANALYST, user__email="analyst@acme.cn")
    receiver.status = 500
    new_member(actor, 3)
    for _attempt in range(3):
        pump()
        time_passes(actor.tenant)
    with tenant_scope(actor.tenant):
        endpoint.refresh_from_db()
    # three failures, but within minutes: not yet "sustained"
    assert (endpoint.is_active, endpoint.consecutive_failures) == (True, 3)
    with tenant_scope(actor.tenant):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        pump()
    with tenant_scope(actor.tenant):
        endpoint.refresh_from_db()
        audit = AuditEntry.objects.get(action="webhook.disabled")
    assert endpoint.is_active is False
    assert endpoint.disabled_at is not None
    assert "连续失败 4 次" in endpoint.disabled_reason
    assert audit.target_id == endpoint.pk
    assert delivery(actor.tenant).status == "dead"
    (notice,) = mail.outbox
    assert notice.to == ["owner@acme.cn"]
    assert "ERP" in notice.subject
    # disabled: later events are logged as dead, nothing is sent
    receiver.status = 200
    new_member(actor, 4)
    assert pump() == 0
    assert receiver.received == []


def test_replay_resends_what_failed_while_the_endpoint_was_down(actor, endpoint, receiver):
    started = timezone.now()
    with tenant_scope(actor.tenant):
        endpoint_update(actor=actor, endpoint=endpoint, changes={"is_active": False})
    new_member(actor, 5)
    new_member(actor, 6)
    pump()
    assert receiver.received == []
    with tenant_scope(actor.tenant):
        endpoint = endpoint_update(actor=actor, endpoint=endpoint, changes={"is_active": True})
        assert deliveries_replay_failed(actor=actor, endpoint=endpoint, since=started) == 2
        # asked again before they went out: nothing is queued twice
        assert deliveries_replay_failed(actor=actor, endpoint=endpoint, since=started) == 0
    assert pump() == 2
    assert sorted(b["data"]["member_no"] for b in receiver.bodies()) == [1, 2]
    with tenant_scope(actor.tenant):
        statuses = sorted(WebhookDelivery.objects.values_list("status", "replay_of__status"))
    assert statuses == [("dead", None), ("dead", None), ("succeeded", "dead"),
                        ("succeeded", "dead")]


def test_replaying_one_delivery_sends_the_same_event_again(actor, endpoint, receiver):
    new_member(actor, 7)
    pump()
    first = delivery(actor.tenant)
    with tenant_scope(actor.tenant):
        again = delivery_replay(actor=actor, delivery=first)
    pump()
    one, two = receiver.received
    assert one.json == two.json  # same event id: the partner can dedupe
    assert one.headers["X-SCRM-Delivery"] != two.headers["X-SCRM-Delivery"]
    assert two.headers["X-SCRM-Delivery"] == str(again.pk)


def test_a_delivery_claimed_by_a_worker_that_died_is_sent_after_its_lease(actor, endpoint,
                                                                          receiver):
    from integrations.webhooks.services.delivery import deliveries_claim
    from integrations.webhooks.services.relay import relay_pending
    from scrm.tenancy import unscoped_access

    new_member(actor, 8)
    relay_pending()
    with unscoped_access("test: a worker claims and dies"):
        (claimed,) = deliveries_claim(limit=10)
    assert pump() == 0  # leased to the dead worker
    time_passes(actor.tenant)
    assert pump() == 1
    assert delivery(actor.tenant).attempts == 2
    assert receiver.bodies()[0]["id"] == claimed.event_id
