"""Every endpoint, called with another tenant's key: 404 or an empty list, and our data unchanged.

Tenant A ("acme") owns the data; tenant B ("rival") attacks with its own full-scope key."""

import pytest
from django.test import Client
from django.urls import URLPattern

from members.models import (
    Member,
    MemberIdentity,
    MemberMerge,
    MemberStats,
    Order,
    OrderLine,
    Refund,
    TimelineEvent,
)
from scrm.api.urls import urlpatterns
from scrm.models import Role
from scrm.tenancy import current_tenant_id, tenant_scope
from tests.factories import StaffFactory, StoreFactory
from tests.members.test_api_orders import ORDER, order_payload

PHONE = {"kind": "phone", "value": "13800138000"}
TENANT_MODELS = (Member, MemberIdentity, MemberStats, MemberMerge, Order, OrderLine, Refund,
                 TimelineEvent)
COVERED: set[str] = set()


def covers(*names: str):
    """Record which named API routes a test attacks; one test checks none is forgotten."""
    COVERED.update(names)
    return lambda test: test


def snapshot(tenant) -> dict[str, list[dict]]:
    with tenant_scope(tenant):
        return {model.__name__: list(model.objects.order_by("pk").values())
                for model in TENANT_MODELS}


@pytest.fixture
def ours(api_client, tenant, store) -> dict:
    """Tenant A's data: two members, an order with a refund, a merge."""
    member = api_client.post("/api/v1/members/upsert/", {"identities": [PHONE], "name": "王芳"},
                             format="json").json()
    spare = api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13900139000"}], "name": "李雷"},
        format="json").json()
    gone = api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "email", "value": "x@example.com"}]}, format="json").json()
    api_client.post(f"/api/v1/members/{spare['id']}/merge/", {"member_id": gone["id"]},
                    format="json")
    order = api_client.post("/api/v1/orders/", ORDER, format="json").json()
    refund = api_client.post(f"/api/v1/orders/{order['id']}/refunds/",
                             {"refund_no": "R1", "amount_fen": 100}, format="json").json()
    assert order["member"] == member["id"]
    return {"member": member, "spare": spare, "gone": gone, "order": order, "refund": refund,
            "before": snapshot(tenant)}


@pytest.fixture
def theirs(other_api_client, other_tenant) -> dict:
    with tenant_scope(other_tenant):
        StoreFactory(tenant=other_tenant, code="SH001", name="对手上海店")
    member = other_api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13700137000"}]}, format="json").json()
    return {"member": member}


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


@covers("members")
def test_member_list_is_empty(other_api_client, ours, tenant):
    assert other_api_client.get("/api/v1/members/").json()["results"] == []
    found = other_api_client.get("/api/v1/members/", {"identity_kind": "phone",
                                                      "identity_value": "13800138000"})
    assert found.json()["results"] == []
    merged = other_api_client.get("/api/v1/members/", {"include_merged": "true"})
    assert merged.json()["results"] == []
    assert snapshot(tenant) == ours["before"]


@covers("members", "members-upsert")
def test_creating_with_our_identity_makes_their_own_member(other_api_client, other_tenant,
                                                           ours, tenant):
    created = other_api_client.post("/api/v1/members/", {"identities": [PHONE]}, format="json")
    upserted = other_api_client.post("/api/v1/members/upsert/", {
        "identities": [PHONE, {"kind": "email", "value": "x@example.com"}], "name": "改名"},
        format="json")

    assert created.status_code == 201, created.json()
    assert upserted.status_code == 200
    assert upserted.json()["id"] == created.json()["id"]
    assert upserted.json()["outcome"] == "updated"
    with tenant_scope(other_tenant):
        assert Member.objects.get().pk == created.json()["id"]
    assert created.json()["id"] not in {ours[k]["id"] for k in ("member", "spare", "gone")}
    assert snapshot(tenant) == ours["before"]


@covers("member")
def test_member_detail_is_404(other_api_client, ours, tenant):
    for key in ("member", "gone"):
        member_id = ours[key]["id"]
        assert_not_found(other_api_client.get(f"/api/v1/members/{member_id}/"))
        assert_not_found(other_api_client.patch(f"/api/v1/members/{member_id}/",
                                                {"name": "改名"}, format="json"))
    assert snapshot(tenant) == ours["before"]


@covers("member-merge")
def test_merge_across_tenants_is_404(other_api_client, ours, theirs, other_tenant, tenant):
    theirs_before = snapshot(other_tenant)

    into_ours = other_api_client.post(f"/api/v1/members/{ours['member']['id']}/merge/",
                                      {"member_id": theirs["member"]["id"]}, format="json")
    ours_into_theirs = other_api_client.post(f"/api/v1/members/{theirs['member']['id']}/merge/",
                                             {"member_id": ours["member"]["id"]}, format="json")

    assert_not_found(into_ours)
    assert_not_found(ours_into_theirs)
    assert snapshot(tenant) == ours["before"]
    assert snapshot(other_tenant) == theirs_before


@covers("member-timeline")
def test_timeline_is_404(other_api_client, ours, tenant):
    assert_not_found(other_api_client.get(f"/api/v1/members/{ours['member']['id']}/timeline/"))
    assert snapshot(tenant) == ours["before"]


@covers("member-phone")
def test_phone_is_404(other_api_client, ours, tenant):
    response = other_api_client.get(f"/api/v1/members/{ours['member']['id']}/phone/")

    assert_not_found(response)
    assert "13800138000" not in response.content.decode()


@covers("orders")
def test_order_list_is_empty_and_same_order_no_is_their_own(other_api_client, other_tenant,
                                                            ours, theirs, tenant):
    assert other_api_client.get("/api/v1/orders/").json()["results"] == []

    same = other_api_client.post("/api/v1/orders/", ORDER, format="json")
    other_content = other_api_client.post("/api/v1/orders/", order_payload(order_no="X"),
                                          format="json")

    assert (same.status_code, other_content.status_code) == (201, 201)
    assert same.json()["id"] != ours["order"]["id"]
    assert same.json()["member"] not in {ours[k]["id"] for k in ("member", "spare", "gone")}
    with tenant_scope(other_tenant):
        assert Order.objects.count() == 2
    assert snapshot(tenant) == ours["before"]


@covers("orders-bulk")
def test_bulk_orders_land_in_their_tenant(other_api_client, other_tenant, ours, theirs, tenant):
    response = other_api_client.post("/api/v1/orders/bulk/", {"orders": [ORDER]}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["created"] == 1
    with tenant_scope(other_tenant):
        assert Order.objects.get().pk == response.json()["results"][0]["id"]
    assert snapshot(tenant) == ours["before"]


@covers("order")
def test_order_detail_is_404(other_api_client, ours, tenant):
    assert_not_found(other_api_client.get(f"/api/v1/orders/{ours['order']['id']}/"))
    assert snapshot(tenant) == ours["before"]


@covers("order-refunds")
def test_refund_of_our_order_is_404(other_api_client, ours, tenant):
    for refund_no, amount in (("R1", 100), ("R2", 100), ("R1", 5)):
        assert_not_found(other_api_client.post(
            f"/api/v1/orders/{ours['order']['id']}/refunds/",
            {"refund_no": refund_no, "amount_fen": amount}, format="json"))
    assert snapshot(tenant) == ours["before"]


def test_idempotency_keys_are_per_tenant(api_client, other_api_client, tenant, other_tenant,
                                         store):
    headers = {"HTTP_IDEMPOTENCY_KEY": "same-key"}
    ours = api_client.post("/api/v1/members/upsert/", {"identities": [PHONE]}, format="json",
                           **headers)
    theirs = other_api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13900139000"}]}, format="json", **headers)

    assert (ours.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["phone"] == "139****9000"


@covers("member-consents", "member-personal-data", "member-erase")
def test_privacy_routes_are_404(other_tenant, ours, tenant):
    from tests.conftest import client_for

    owner_key = client_for(other_tenant, scopes=["members:read", "members:write",
                                                  "privacy:manage"])
    for key in ("member", "gone"):
        member_id = ours[key]["id"]
        assert_not_found(owner_key.get(f"/api/v1/members/{member_id}/consents/"))
        assert_not_found(owner_key.post(f"/api/v1/members/{member_id}/consents/",
                                        {"purpose": "marketing", "granted": True},
                                        format="json"))
        assert_not_found(owner_key.get(f"/api/v1/members/{member_id}/personal-data/"))
        assert_not_found(owner_key.post(f"/api/v1/members/{member_id}/erase/",
                                        {"confirm": "ERASE"}, format="json"))
    assert snapshot(tenant) == ours["before"]


def test_every_members_api_route_has_an_isolation_test():
    routes = {
        pattern.name
        for pattern in urlpatterns
        if isinstance(pattern, URLPattern)
        and pattern.callback.view_class.__module__.startswith("members.api.")
    }

    assert routes
    assert routes - COVERED == set()


def test_tenant_does_not_outlive_a_failed_request(api_client, store, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("members.selectors.member_list", broken)
    api_client.raise_request_exception = False

    response = api_client.get("/api/v1/members/")

    assert response.status_code == 500
    assert current_tenant_id() is None


# Staff sessions


def test_staff_session_sees_only_its_tenant(ours, theirs, tenant, other_tenant):
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=Role.OWNER).user)

    listed = client.get("/api/v1/members/").json()["results"]

    assert {m["id"] for m in listed} == {ours["member"]["id"], ours["spare"]["id"]}
    assert_not_found(client.get(f"/api/v1/members/{theirs['member']['id']}/"))
    assert_not_found(client.get(f"/api/v1/members/{theirs['member']['id']}/timeline/"))
    assert_not_found(client.patch(f"/api/v1/members/{theirs['member']['id']}/",
                                  {"name": "改名"}, content_type="application/json"))
    assert_not_found(client.post(f"/api/v1/members/{ours['member']['id']}/merge/",
                                 {"member_id": theirs["member"]["id"]},
                                 content_type="application/json"))
    with tenant_scope(other_tenant):
        assert Member.objects.get().name == ""
    assert snapshot(tenant) == ours["before"]


def test_staff_in_two_tenants_sees_only_the_chosen_one(ours, theirs, tenant, other_tenant):
    mine = StaffFactory(tenant=tenant, role=Role.OWNER)
    StaffFactory(tenant=other_tenant, role=Role.OWNER, user=mine.user)
    client = Client()
    client.force_login(mine.user)
    session = client.session
    session["tenant_id"] = other_tenant.pk
    session.save()

    listed = client.get("/api/v1/members/").json()["results"]

    assert [m["id"] for m in listed] == [theirs["member"]["id"]]
    assert_not_found(client.get(f"/api/v1/members/{ours['member']['id']}/"))
