import pytest

from members.models import Member, MemberIdentity, MemberMerge
from scrm.tenancy import tenant_scope

UPSERT = "/api/v1/members/upsert/"

WANG_FANG = {
    "identities": [
        {"kind": "wechat_openid", "app_id": "wx1234", "value": "oAbc123"},
        {"kind": "phone", "value": "13800138000"},
    ],
    "name": "王芳", "gender": "female", "birthday": "1992-05-01", "province": "上海",
    "city": "上海", "store": "SH001", "marketing_consent": True,
}


def test_upsert_creates_member_with_masked_phone(api_client, store):
    response = api_client.post(UPSERT, WANG_FANG, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["outcome"] == "created"
    assert body["name"] == "王芳"
    assert body["phone"] == "138****8000"
    assert body["store"] == "SH001"
    assert body["member_no"] == 1
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("wechat_openid", "oAbc123"), ("phone", "138****8000")}


def test_phone_is_encrypted_at_rest(api_client, store, tenant):
    api_client.post(UPSERT, WANG_FANG, format="json")
    with tenant_scope(tenant):
        member = Member.objects.get()
        identity = MemberIdentity.objects.get(kind="phone")
    assert "13800138000" not in member.phone_encrypted
    assert identity.value != "13800138000"
    assert "13800138000" not in identity.value_encrypted


def test_upsert_again_updates_the_same_member(api_client, store):
    first = api_client.post(UPSERT, WANG_FANG, format="json").json()
    again = api_client.post(UPSERT, {
        "identities": [{"kind": "phone", "value": "+86 138 0013 8000"}], "city": "杭州"},
        format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["city"] == "杭州"
    assert again.json()["outcome"] == "updated"


def test_identities_of_two_members_merge_into_the_oldest(api_client, tenant, store):
    older = api_client.post(UPSERT, {"identities": [{"kind": "phone", "value": "13800138000"}]},
                            format="json").json()
    newer = api_client.post(UPSERT, {"identities": [
        {"kind": "wechat_unionid", "value": "uX1"}], "name": "王芳"}, format="json").json()
    merged = api_client.post(UPSERT, {"identities": [
        {"kind": "phone", "value": "13800138000"}, {"kind": "wechat_unionid", "value": "uX1"}]},
        format="json")
    assert merged.status_code == 200
    body = merged.json()
    assert body["outcome"] == "merged"
    assert body["id"] == older["id"]
    assert body["name"] == "王芳"
    assert {i["kind"] for i in body["identities"]} == {"phone", "wechat_unionid"}
    gone = api_client.get(f"/api/v1/members/{newer['id']}/").json()
    assert gone["status"] == "merged"
    assert gone["merged_into"] == older["id"]
    with tenant_scope(tenant):
        assert MemberMerge.objects.get().reason == "automatic"


def test_manual_merge_moves_orders_and_stats(api_client, store):
    a = api_client.post(UPSERT, {"identities": [{"kind": "phone", "value": "13800138000"}]},
                        format="json").json()
    b = api_client.post(UPSERT, {"identities": [{"kind": "phone", "value": "13900139000"}]},
                        format="json").json()
    api_client.post("/api/v1/orders/", {
        "order_no": "P1", "channel": "pos", "paid_at": "2026-11-01T10:00:00+08:00",
        "amount_fen": 5000, "buyer": {"identities": [{"kind": "phone", "value": "13900139000"}]},
        "lines": [{"sku": "S1", "product": "口红", "quantity": 1, "price_fen": 5000}]},
        format="json")
    response = api_client.post(f"/api/v1/members/{a['id']}/merge/", {"member_id": b["id"]},
                               format="json")
    assert response.status_code == 200
    assert response.json()["stats"]["order_count"] == 1
    assert response.json()["stats"]["total_spent_fen"] == 5000
    timeline = api_client.get(f"/api/v1/members/{a['id']}/timeline/").json()["results"]
    assert {"member.merged", "order.paid"} <= {event["kind"] for event in timeline}


@pytest.mark.parametrize(("payload", "code"), [
    ({"identities": [{"kind": "qq", "value": "1"}]}, "validation_error"),
    ({"identities": [{"kind": "phone", "value": "12345"}]}, "invalid_phone"),
    ({"identities": [{"kind": "wechat_openid", "value": "o1"}]}, "app_id_required"),
    ({"identities": []}, "validation_error"),
    ({"identities": [{"kind": "phone", "value": "13800138000"}], "nickname": "x"},
     "validation_error"),
    ({"identities": [{"kind": "phone", "value": "13800138000"}], "birthday": "1992-13-01"},
     "validation_error"),
    ({"identities": [{"kind": "phone", "value": "13800138000"}], "store": "NOPE"},
     "unknown_store"),
])
def test_bad_upsert_is_refused_and_writes_nothing(api_client, tenant, store, payload, code):
    response = api_client.post(UPSERT, payload, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert response.json()["message"]
    with tenant_scope(tenant):
        assert Member.objects.count() == 0


def test_malformed_json_answers_400(api_client):
    response = api_client.generic("POST", UPSERT, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_errors_speak_english_on_request(api_client):
    response = api_client.post(UPSERT, {"identities": [{"kind": "phone", "value": "12345"}]},
                               format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["message"].startswith("Invalid phone number")


def test_lookup_by_identity(api_client, store):
    created = api_client.post(UPSERT, WANG_FANG, format="json").json()
    found = api_client.get("/api/v1/members/", {"identity_kind": "phone",
                                                "identity_value": "13800138000"}).json()
    assert [m["id"] for m in found["results"]] == [created["id"]]


def test_other_tenant_cannot_see_or_change_members(api_client, other_api_client, store):
    created = api_client.post(UPSERT, WANG_FANG, format="json").json()
    assert other_api_client.get(f"/api/v1/members/{created['id']}/").status_code == 404
    patch = other_api_client.patch(f"/api/v1/members/{created['id']}/", {"name": "x"},
                                   format="json")
    assert patch.status_code == 404
    assert other_api_client.get("/api/v1/members/").json()["results"] == []
    assert api_client.get(f"/api/v1/members/{created['id']}/").json()["name"] == "王芳"


def test_idempotency_key_replays_and_refuses_other_body(api_client, tenant, store):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = api_client.post(UPSERT, WANG_FANG, format="json", **headers)
    again = api_client.post(UPSERT, WANG_FANG, format="json", **headers)
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api_client.post(UPSERT, {**WANG_FANG, "name": "李雷"}, format="json", **headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    with tenant_scope(tenant):
        assert Member.objects.get().name == "王芳"


def test_missing_key_is_401(client, db):
    response = client.get("/api/v1/members/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_full_phone_view_is_audited(api_client, tenant, store):
    from scrm.models import AuditEntry

    created = api_client.post(UPSERT, WANG_FANG, format="json").json()
    response = api_client.get(f"/api/v1/members/{created['id']}/phone/")
    assert response.json() == {"phone": "13800138000"}
    with tenant_scope(tenant):
        entry = AuditEntry.objects.get(action="member.phone_viewed")
    assert (entry.action, entry.target_type, entry.target_id) == (
        "member.phone_viewed", "member", created["id"])


@pytest.mark.parametrize("changes", [
    {},
    {"city": "杭州", "first_touch": {"scene": "qr", "channel": 7}},
    {"identities": [{"kind": "email", "value": "Fang@Example.com"}]},
])
def test_upsert_answers_the_member_as_it_reads_back(api_client, store, changes):
    """Created and updated members are answered from what the upsert wrote, not read again:
    the answer must be what the member's own page shows."""
    created = api_client.post(UPSERT, WANG_FANG, format="json").json()
    assert created.pop("outcome") == "created"
    assert created == api_client.get(f"/api/v1/members/{created['id']}/").json()

    body = {"identities": [WANG_FANG["identities"][1]], **changes}
    if "identities" in changes:
        body["identities"] = [WANG_FANG["identities"][1], *changes["identities"]]
    updated = api_client.post(UPSERT, body, format="json").json()
    assert updated.pop("outcome") == "updated"
    assert updated == api_client.get(f"/api/v1/members/{created['id']}/").json()
