import pytest
from django.db import transaction

from integrations.webhooks.models import WebhookDelivery
from integrations.webhooks.services.signing import signature_verify
from members.services.members import member_upsert
from scrm.models import OutboxEvent
from scrm.tenancy import tenant_scope, unscoped_access
from tests.webhooks.conftest import pump

PHONE = [{"kind": "phone", "value": "13800138000"}]


def test_created_member_is_posted_signed(actor, endpoint_with_secret, receiver):
    endpoint, secret = endpoint_with_secret
    with tenant_scope(actor.tenant):
        member, _outcome = member_upsert(actor=actor, identities=PHONE, profile={"name": "王芳"})
    assert pump() == 1
    (got,) = receiver.received
    body = got.json
    assert body["type"] == "member.created"
    assert body["tenant"] == "acme"
    assert body["data"]["member_id"] == member.pk
    assert set(body) == {"id", "type", "occurred_at", "tenant", "data"}
    assert got.headers["X-SCRM-Event"] == "member.created"
    assert signature_verify(secret=secret, body=got.body, header=got.headers["X-SCRM-Signature"])
    assert not signature_verify(secret="whsec_wrong", body=got.body,
                                header=got.headers["X-SCRM-Signature"])
    with tenant_scope(actor.tenant):
        delivery = WebhookDelivery.objects.get()
    assert got.headers["X-SCRM-Delivery"] == str(delivery.pk)
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("succeeded", 200, 1)


def test_change_that_rolled_back_is_never_sent(actor, endpoint, receiver):
    def request_that_fails_after_the_write():
        with transaction.atomic():
            member_upsert(actor=actor, identities=PHONE, profile={"name": "王芳"})
            raise RuntimeError("the request failed after the member was written")

    with tenant_scope(actor.tenant), pytest.raises(RuntimeError):
        request_that_fails_after_the_write()
    assert pump() == 0
    assert receiver.received == []
    with unscoped_access("test"):
        assert OutboxEvent.objects.unscoped().count() == 0


def test_a_name_that_resolves_to_an_internal_address_is_not_posted_to(actor, receiver, settings):
    """DNS rebinding: the name passed the check when it was saved; at send time it points
    inside the network, and the delivery fails instead of reaching it."""
    from integrations.webhooks.services.endpoints import endpoint_create

    with tenant_scope(actor.tenant):
        endpoint_create(actor=actor, name="ERP", event_types=["member.created"],
                        url=receiver.url.replace("127.0.0.1", "localhost"))
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with tenant_scope(actor.tenant):
        member_upsert(actor=actor, identities=PHONE, profile={"name": "王芳"})
    assert pump() == 1
    assert receiver.received == []
    with tenant_scope(actor.tenant):
        delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("failed", None)
    assert "resolves only to private or loopback addresses" in delivery.error

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # a local partner, allowed: it goes through
    with tenant_scope(actor.tenant):
        WebhookDelivery.objects.update(next_attempt_at=delivery.created_at)
    assert pump() == 1
    assert [body["type"] for body in receiver.bodies()] == ["member.created"]
