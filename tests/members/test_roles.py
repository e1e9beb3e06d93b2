"""What each staff role may see and do, signed in with a session like the dashboard."""

import pytest
from django.test import Client

from members.models import Member, MemberIdentity, Order, Refund
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory, StoreFactory
from tests.members.test_api_orders import ORDER, order_payload

MEMBERS = "/api/v1/members/"
ORDERS = "/api/v1/orders/"


@pytest.fixture
def other_store(tenant):
    with tenant_scope(tenant):
        return StoreFactory(tenant=tenant, code="BJ001", name="北京国贸店")


def staff(tenant, role, store=None):
    return StaffFactory(tenant=tenant, role=role, store=store)


def signed_in(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def guide(tenant, store):
    return staff(tenant, Role.GUIDE, store)


@pytest.fixture
def other_guide(tenant, store):
    return staff(tenant, Role.GUIDE, store)


@pytest.fixture
def book(api_client, store, other_store, guide, other_guide) -> dict[str, dict]:
    """Three members: one per guide in the Shanghai store, one in the Beijing store."""
    def upsert(phone, **profile):
        response = api_client.post(f"{MEMBERS}upsert/", {
            "identities": [{"kind": "phone", "value": phone}], **profile}, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return {
        "mine": upsert("13800138000", name="王芳", store="SH001", guide=guide.pk),
        "colleague": upsert("13900139000", name="李雷", store="SH001", guide=other_guide.pk),
        "beijing": upsert("13700137000", name="韩梅梅", store="BJ001"),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.json()
    return {member["id"] for member in response.json()["results"]}


def member_row(tenant, member_id: int) -> dict:
    with tenant_scope(tenant):
        return Member.objects.values().get(pk=member_id)


def test_guide_sees_only_their_own_customers(guide, book):
    client = signed_in(guide)

    assert ids(client.get(MEMBERS)) == {book["mine"]["id"]}
    assert client.get(f"{MEMBERS}{book['mine']['id']}/").json()["name"] == "王芳"
    for other in ("colleague", "beijing"):
        member_id = book[other]["id"]
        for path in ("", "timeline/"):
            response = client.get(f"{MEMBERS}{member_id}/{path}")
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"


def test_guide_cannot_change_anothers_customer(tenant, guide, book):
    client = signed_in(guide)
    member_id = book["colleague"]["id"]
    before = member_row(tenant, member_id)

    patch = client.patch(f"{MEMBERS}{member_id}/", {"name": "改名"},
                         content_type="application/json")
    upsert = client.post(f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": "13900139000"},
                       {"kind": "email", "value": "li@example.com"}], "name": "改名"},
        content_type="application/json")
    merge = client.post(f"{MEMBERS}{book['mine']['id']}/merge/", {"member_id": member_id},
                        content_type="application/json")

    assert (patch.status_code, upsert.status_code, merge.status_code) == (404, 404, 404)
    assert member_row(tenant, member_id) == before
    with tenant_scope(tenant):
        assert not MemberIdentity.objects.filter(kind="email").exists()
        assert Member.objects.filter(status="merged").count() == 0


def test_members_a_guide_creates_are_theirs(tenant, guide, store):
    client = signed_in(guide)

    response = client.post(MEMBERS, {"identities": [{"kind": "phone", "value": "13600136000"}],
                                     "name": "新客"}, content_type="application/json")

    assert response.status_code == 201, response.json()
    assert (response.json()["guide"], response.json()["store"]) == (guide.pk, "SH001")
    assert ids(client.get(MEMBERS)) == {response.json()["id"]}


def test_store_manager_sees_only_their_store(tenant, store, book):
    manager = staff(tenant, Role.STORE_MANAGER, store)
    client = signed_in(manager)

    assert ids(client.get(MEMBERS)) == {book["mine"]["id"], book["colleague"]["id"]}
    assert client.get(f"{MEMBERS}{book['beijing']['id']}/").status_code == 404
    created = client.post(MEMBERS, {"identities": [{"kind": "phone", "value": "13600136000"}],
                                    "store": "BJ001"}, content_type="application/json")
    assert created.status_code == 201
    assert created.json()["store"] == "SH001"


def test_owner_sees_the_whole_tenant(tenant, book):
    client = signed_in(staff(tenant, Role.OWNER))

    assert ids(client.get(MEMBERS)) == {member["id"] for member in book.values()}


def test_analyst_reads_but_cannot_write(tenant, store, book):
    client = signed_in(staff(tenant, Role.ANALYST))
    member_id = book["mine"]["id"]
    before = member_row(tenant, member_id)

    assert ids(client.get(MEMBERS)) == {member["id"] for member in book.values()}
    refused = [
        client.post(MEMBERS, {"identities": [{"kind": "phone", "value": "13600136000"}]},
                    content_type="application/json"),
        client.post(f"{MEMBERS}upsert/", {"identities": [{"kind": "phone",
                                                          "value": "13800138000"}],
                                          "name": "改名"}, content_type="application/json"),
        client.patch(f"{MEMBERS}{member_id}/", {"name": "改名"}, content_type="application/json"),
        client.post(ORDERS, ORDER, content_type="application/json"),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert {r.json()["code"] for r in refused} == {"permission_denied"}
    assert member_row(tenant, member_id) == before
    with tenant_scope(tenant):
        assert (Member.objects.count(), Order.objects.count()) == (3, 0)


@pytest.mark.parametrize(("role", "status"), [
    (Role.OWNER, 200),
    (Role.BRAND_OPERATOR, 200),
    (Role.CUSTOMER_SERVICE, 200),
    (Role.CHANNEL_OPERATOR, 403),
    (Role.STORE_MANAGER, 403),
    (Role.GUIDE, 403),
    (Role.ANALYST, 403),
])
def test_only_roles_with_pii_read_see_the_full_phone(tenant, store, api_client, role, status):
    member = staff(tenant, role, store)
    created = api_client.post(f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}], "store": "SH001",
        "guide": member.pk}, format="json").json()
    client = signed_in(member)

    response = client.get(f"{MEMBERS}{created['id']}/phone/")

    assert response.status_code == status
    if status == 200:
        assert response.json() == {"phone": "13800138000"}
    else:
        assert response.json()["code"] == "permission_denied"
        assert "13800138000" not in response.content.decode()
        assert client.get(f"{MEMBERS}{created['id']}/").json()["phone"] == "138****8000"


# Orders follow the members a role may see.


@pytest.fixture
def orders(api_client, book) -> dict[str, dict]:
    placed = {}
    for name, phone in (("mine", "13800138000"), ("beijing", "13700137000")):
        response = api_client.post(ORDERS, order_payload(
            order_no=f"TM-{name}", store=None,
            buyer={"identities": [{"kind": "phone", "value": phone}]}), format="json")
        assert response.status_code == 201, response.json()
        placed[name] = response.json()
    return placed


def test_guide_sees_only_their_customers_orders(guide, orders):
    client = signed_in(guide)

    assert ids(client.get(ORDERS)) == {orders["mine"]["id"]}
    assert client.get(f"{ORDERS}{orders['mine']['id']}/").status_code == 200
    assert client.get(f"{ORDERS}{orders['beijing']['id']}/").status_code == 404


def test_store_manager_cannot_refund_another_stores_order(tenant, store, orders):
    client = signed_in(staff(tenant, Role.STORE_MANAGER, store))

    refused = client.post(f"{ORDERS}{orders['beijing']['id']}/refunds/",
                          {"refund_no": "R1", "amount_fen": 100}, content_type="application/json")
    allowed = client.post(f"{ORDERS}{orders['mine']['id']}/refunds/",
                          {"refund_no": "R1", "amount_fen": 100}, content_type="application/json")

    assert (refused.status_code, allowed.status_code) == (404, 201)
    with tenant_scope(tenant):
        assert list(Refund.objects.values_list("order_id", flat=True)) == [orders["mine"]["id"]]
        assert Order.objects.get(pk=orders["beijing"]["id"]).refunded_fen == 0


def test_store_manager_cannot_read_another_stores_order_by_posting_it(tenant, store, orders):
    client = signed_in(staff(tenant, Role.STORE_MANAGER, store))
    payload = order_payload(order_no="TM-beijing", store=None,
                            buyer={"identities": [{"kind": "phone", "value": "13700137000"}]})

    response = client.post(ORDERS, payload, content_type="application/json")

    assert response.status_code == 404
    assert "TM-beijing" not in response.content.decode()
    with tenant_scope(tenant):
        assert Order.objects.count() == 2


def test_guide_cannot_post_orders(tenant, guide, store):
    response = signed_in(guide).post(ORDERS, ORDER, content_type="application/json")

    assert response.status_code == 403
    with tenant_scope(tenant):
        assert Order.objects.count() == 0


# API key scopes


def test_read_only_key_cannot_write(tenant, store):
    client = client_for(tenant, scopes=["members:read"])

    assert client.get(MEMBERS).status_code == 200
    refused = [
        client.post(ORDERS, ORDER, format="json"),
        client.post(MEMBERS, {"identities": [{"kind": "phone", "value": "13600136000"}]},
                    format="json"),
        client.get(ORDERS),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    assert {r.json()["code"] for r in refused} == {"permission_denied"}
    with tenant_scope(tenant):
        assert (Member.objects.count(), Order.objects.count()) == (0, 0)


def test_key_without_pii_read_cannot_see_the_phone(tenant, store, api_client):
    created = api_client.post(f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}]}, format="json").json()
    client = client_for(tenant, scopes=["members:read", "members:write"])

    response = client.get(f"{MEMBERS}{created['id']}/phone/")

    assert response.status_code == 403
    assert api_client.get(f"{MEMBERS}{created['id']}/phone/").json() == {"phone": "13800138000"}
