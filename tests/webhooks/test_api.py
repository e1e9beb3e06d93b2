"""The webhooks API and page: the secret once, a ping, the log, replays, other tenants."""

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services.signing import signature_verify
from members.services.members import member_upsert
from scrm import crypto
from scrm.access import WEBHOOKS_READ
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.webhooks.conftest import pump

ENDPOINTS = "/api/v1/webhooks/endpoints/"


def create(client, url, **changes):
    return client.post(ENDPOINTS, {"name": "ERP", "url": url,
                                   "event_types": ["member.created"], **changes}, format="json")


def test_the_secret_is_shown_once_and_kept_encrypted(api_client, tenant, receiver):
    response = create(api_client, receiver.url)
    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in api_client.get(f"{ENDPOINTS}{body['id']}/").json()
    with tenant_scope(tenant):
        stored = WebhookEndpoint.objects.get().secret_encrypted
    assert secret not in stored
    assert crypto.decrypt(stored) == secret
    again = create(api_client, receiver.url)  # a retried create
    assert (again.status_code, again.json()["code"]) == (409, "endpoint_exists")


def test_bad_endpoints_are_refused_with_field_errors(api_client, tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    private = create(api_client, "http://10.0.0.8/hooks")
    assert (private.status_code, private.json()["code"]) == (400, "validation_error")
    assert "url" in private.json()["errors"]
    unknown = create(api_client, "https://erp.example.com/hooks", event_types=["member.eaten"])
    assert unknown.status_code == 400
    assert "event_types" in unknown.json()["errors"]
    with tenant_scope(tenant):
        assert WebhookEndpoint.objects.count() == 0


def test_ping_and_rotation_sign_with_the_current_secret(api_client, receiver):
    endpoint_id = create(api_client, receiver.url).json()["id"]
    new_secret = api_client.post(f"{ENDPOINTS}{endpoint_id}/rotate-secret/").json()["secret"]
    response = api_client.post(f"{ENDPOINTS}{endpoint_id}/ping/")
    assert response.json()["ok"] is True
    assert response.json()["response_code"] == 200
    (ping,) = receiver.received
    assert ping.json["type"] == "ping"
    assert signature_verify(secret=new_secret, body=ping.body,
                            header=ping.headers["X-SCRM-Signature"])


def test_the_log_lists_filters_and_replays(api_client, tenant, receiver):
    endpoint_id = create(api_client, receiver.url).json()["id"]
    actor_client_member(tenant)
    pump()
    deliveries = api_client.get("/api/v1/webhooks/deliveries/?status=succeeded").json()
    (row,) = deliveries["results"]
    assert (row["endpoint_id"], row["event_type"], row["response_code"]) == (
        endpoint_id, "member.created", 200)
    assert api_client.get("/api/v1/webhooks/deliveries/?status=failed").json()["results"] == []
    replay = api_client.post(f"/api/v1/webhooks/deliveries/{row['id']}/replay/")
    assert replay.status_code == 202
    assert replay.json()["replay_of_id"] == row["id"]
    pump()
    assert [r.json["id"] for r in receiver.received] == [row["event_id"]] * 2


def actor_client_member(tenant, phone="13600000001"):
    from scrm.access import ALL_SCOPES, Actor

    with tenant_scope(tenant):
        member_upsert(actor=Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES)),
                      identities=[{"kind": "phone", "value": phone}])


def test_other_tenants_neither_see_nor_receive(api_client, other_api_client, tenant,
                                               other_tenant, receiver):
    endpoint_id = create(api_client, receiver.url).json()["id"]
    actor_client_member(tenant)
    pump()
    assert other_api_client.get(f"{ENDPOINTS}{endpoint_id}/").status_code == 404
    assert other_api_client.patch(f"{ENDPOINTS}{endpoint_id}/", {"is_active": False},
                                  format="json").status_code == 404
    assert other_api_client.get(ENDPOINTS).json()["results"] == []
    assert other_api_client.get("/api/v1/webhooks/deliveries/").json()["results"] == []
    with tenant_scope(tenant):
        delivery_id = WebhookDelivery.objects.get().pk
        assert WebhookEndpoint.objects.get().is_active is True
    assert other_api_client.post(
        f"/api/v1/webhooks/deliveries/{delivery_id}/replay/").status_code == 404
    # the other tenant's endpoint gets none of this tenant's events
    other_receiver_url = receiver.url + "?tenant=rival"
    assert create(other_api_client, other_receiver_url).status_code == 201
    actor_client_member(tenant, phone="13600000002")
    pump()
    assert [r.path for r in receiver.received] == ["/hooks", "/hooks"]


def test_reading_needs_the_scope_and_writing_needs_manage(tenant, receiver):
    reader = client_for(tenant, scopes=[WEBHOOKS_READ])
    assert reader.get(ENDPOINTS).status_code == 200
    refused = create(reader, receiver.url)
    assert refused.status_code == 403
    with tenant_scope(tenant):
        assert WebhookEndpoint.objects.count() == 0


def test_the_settings_page_shows_endpoints_deliveries_and_the_notice(client, tenant, receiver):
    owner = StaffFactory(tenant=tenant, role=Role.OWNER)
    client.force_login(owner.user)
    response = client.post("/settings/webhooks/", {
        "name": "POS", "url": receiver.url, "event_types": ["member.created"]})
    assert response.status_code == 200
    assert "whsec_" in response.content.decode()
    actor_client_member(tenant)
    pump()
    with tenant_scope(tenant):
        WebhookEndpoint.objects.update(is_active=False, disabled_reason="连续失败 20 次",
                                       disabled_at="2026-12-01T00:00:00Z")
    page = client.get("/settings/webhooks/").content.decode()
    assert "连续失败 20 次" in page
    assert "member.created" in page
    assert ">200<" in page
