import copy
import json

import pytest

from members.models import (
    Member,
    MemberIdentity,
    MemberStats,
    Order,
    OrderLine,
    Refund,
    TimelineEvent,
)
from scrm.tenancy import tenant_scope

ORDERS = "/api/v1/orders/"
PHONE = {"kind": "phone", "value": "13800138000"}

ORDER = {
    "order_no": "TM20261101001",
    "channel": "tmall",
    "store": "SH001",
    "paid_at": "2026-11-01T10:00:00+08:00",
    "amount_fen": 29900,
    "buyer": {"identities": [PHONE]},
    "lines": [
        {"sku": "SK-30", "product": "精华液 30ml", "category": "护肤", "quantity": 1,
         "price_fen": 29900},
    ],
}


def order_payload(**changes) -> dict:
    payload = copy.deepcopy(ORDER)
    payload.update(changes)
    return payload


def refunds_url(order_id: int) -> str:
    return f"/api/v1/orders/{order_id}/refunds/"


def row_counts(tenant) -> dict[str, int]:
    with tenant_scope(tenant):
        return {model.__name__: model.objects.count() for model in (
            Member, MemberIdentity, MemberStats, Order, OrderLine, Refund, TimelineEvent)}


def stats_of(api_client, member_id: int) -> dict:
    response = api_client.get(f"/api/v1/members/{member_id}/")
    assert response.status_code == 200
    return response.json()["stats"]


@pytest.fixture
def paid(api_client, store) -> dict:
    response = api_client.post(ORDERS, ORDER, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_order_from_unknown_buyer_creates_order_and_member(api_client, tenant, store):
    response = api_client.post(ORDERS, ORDER, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("id", "member", "created_at")} == {
        "order_no": "TM20261101001", "channel": "tmall", "store": "SH001",
        "paid_at": "2026-11-01T10:00:00+08:00", "amount_fen": 29900, "refunded_fen": 0,
        "status": "paid",
        "lines": [{"sku": "SK-30", "product": "精华液 30ml", "category": "护肤",
                   "quantity": 1, "price_fen": 29900}],
    }
    member = api_client.get(f"/api/v1/members/{body['member']}/").json()
    assert member["phone"] == "138****8000"
    assert member["store"] == "SH001"
    assert member["stats"] == {
        "order_count": 1, "total_spent_fen": 29900, "refunded_fen": 0,
        "first_order_at": "2026-11-01T10:00:00+08:00",
        "last_order_at": "2026-11-01T10:00:00+08:00",
    }
    with tenant_scope(tenant):
        order = Order.objects.get()
        assert (order.pk, order.member_id) == (body["id"], body["member"])
        assert Member.objects.get().pk == body["member"]


def test_order_of_known_buyer_goes_to_that_member(api_client, tenant, store):
    known = api_client.post("/api/v1/members/upsert/", {"identities": [PHONE]},
                            format="json").json()

    body = api_client.post(ORDERS, ORDER, format="json").json()

    assert body["member"] == known["id"]
    with tenant_scope(tenant):
        assert Member.objects.count() == 1


def test_same_order_again_returns_it_and_writes_nothing(api_client, tenant, paid):
    before = row_counts(tenant)

    again = api_client.post(ORDERS, ORDER, format="json")

    assert again.status_code == 200
    assert again.json() == paid
    assert row_counts(tenant) == before
    assert stats_of(api_client, paid["member"])["order_count"] == 1


def test_same_order_sent_in_another_time_zone_is_the_same_order(api_client, tenant, paid):
    again = api_client.post(
        ORDERS, order_payload(paid_at="2026-11-01T02:00:00Z",
                              buyer={"identities": [{"kind": "phone",
                                                     "value": "+86 138 0013 8000"}]}),
        format="json")

    assert again.status_code == 200
    assert again.json()["id"] == paid["id"]


@pytest.mark.parametrize("changes", [
    {"amount_fen": 19900},
    {"paid_at": "2026-11-02T10:00:00+08:00"},
    {"buyer": {"identities": [{"kind": "phone", "value": "13900139000"}]}},
    {"lines": [{"sku": "SK-50", "product": "精华液 50ml", "quantity": 1, "price_fen": 29900}]},
])
def test_same_order_no_with_other_content_is_a_conflict(api_client, tenant, paid, changes):
    before = row_counts(tenant)

    response = api_client.post(ORDERS, order_payload(**changes), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "order_conflict"
    assert row_counts(tenant) == before
    assert api_client.get(f"{ORDERS}{paid['id']}/").json() == paid


def test_same_order_no_on_another_channel_is_another_order(api_client, tenant, paid):
    response = api_client.post(ORDERS, order_payload(channel="jd"), format="json")

    assert response.status_code == 201
    other = response.json()
    assert other["id"] != paid["id"]
    assert other["member"] == paid["member"]
    assert (other["channel"], other["order_no"]) == ("jd", "TM20261101001")
    assert stats_of(api_client, paid["member"])["order_count"] == 2
    with tenant_scope(tenant):
        assert Order.objects.count() == 2


def test_member_stats_follow_several_orders(api_client, store):
    for order_no, paid_at, amount in [("A2", "2026-11-05T09:30:00+08:00", 10000),
                                      ("A1", "2026-10-01T20:00:00+08:00", 5000),
                                      ("A3", "2026-11-03T12:00:00+08:00", 1)]:
        response = api_client.post(ORDERS, order_payload(
            order_no=order_no, paid_at=paid_at, amount_fen=amount,
            lines=[{"sku": "S", "product": "口红", "quantity": 1, "price_fen": amount}]),
            format="json")
        assert response.status_code == 201
    member_id = response.json()["member"]

    assert stats_of(api_client, member_id) == {
        "order_count": 3, "total_spent_fen": 15001, "refunded_fen": 0,
        "first_order_at": "2026-10-01T20:00:00+08:00",
        "last_order_at": "2026-11-05T09:30:00+08:00",
    }


def test_order_list_and_detail(api_client, paid):
    listed = api_client.get(ORDERS)
    detail = api_client.get(f"{ORDERS}{paid['id']}/")

    assert listed.status_code == detail.status_code == 200
    assert listed.json()["results"] == [paid]
    assert detail.json() == paid


def test_unknown_order_is_404(api_client, paid):
    assert api_client.get(f"{ORDERS}{paid['id'] + 1000}/").status_code == 404
    response = api_client.post(refunds_url(paid["id"] + 1000),
                               {"refund_no": "R1", "amount_fen": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# Refunds


def test_partial_refund_reduces_stats(api_client, tenant, paid):
    response = api_client.post(refunds_url(paid["id"]),
                               {"refund_no": "R1", "amount_fen": 9900, "reason": "破损"},
                               format="json")

    assert response.status_code == 201, response.json()
    refund = response.json()
    assert {k: v for k, v in refund.items() if k not in ("id", "created_at")} == {
        "order": paid["id"], "refund_no": "R1", "amount_fen": 9900, "reason": "破损"}
    order = api_client.get(f"{ORDERS}{paid['id']}/").json()
    assert (order["status"], order["refunded_fen"]) == ("partially_refunded", 9900)
    assert stats_of(api_client, paid["member"]) == {
        "order_count": 1, "total_spent_fen": 20000, "refunded_fen": 9900,
        "first_order_at": "2026-11-01T10:00:00+08:00",
        "last_order_at": "2026-11-01T10:00:00+08:00",
    }


def test_full_refund_no_longer_counts_the_order(api_client, paid):
    earlier = api_client.post(ORDERS, order_payload(
        order_no="TM20261020001", paid_at="2026-10-20T08:00:00+08:00", amount_fen=5000,
        lines=[{"sku": "S", "product": "口红", "quantity": 2, "price_fen": 2500}]),
        format="json").json()

    first = api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 9900},
                            format="json")
    rest = api_client.post(refunds_url(paid["id"]), {"refund_no": "R2", "amount_fen": 20000},
                           format="json")

    assert (first.status_code, rest.status_code) == (201, 201)
    order = api_client.get(f"{ORDERS}{paid['id']}/").json()
    assert (order["status"], order["refunded_fen"]) == ("refunded", 29900)
    assert stats_of(api_client, paid["member"]) == {
        "order_count": 1, "total_spent_fen": 5000, "refunded_fen": 29900,
        "first_order_at": earlier["paid_at"], "last_order_at": earlier["paid_at"],
    }


def test_refund_of_the_only_order_empties_the_stats(api_client, paid):
    api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 29900},
                    format="json")

    assert stats_of(api_client, paid["member"]) == {
        "order_count": 0, "total_spent_fen": 0, "refunded_fen": 29900,
        "first_order_at": None, "last_order_at": None,
    }


def test_refund_over_the_remaining_amount_is_refused(api_client, tenant, paid):
    api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 20000},
                    format="json")
    before = row_counts(tenant)

    response = api_client.post(refunds_url(paid["id"]), {"refund_no": "R2", "amount_fen": 9901},
                               format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "refund_exceeds_paid"
    assert response.json()["errors"] == {"amount_fen": ["超过可退金额"]}
    assert row_counts(tenant) == before
    order = api_client.get(f"{ORDERS}{paid['id']}/").json()
    assert (order["status"], order["refunded_fen"]) == ("partially_refunded", 20000)
    assert stats_of(api_client, paid["member"])["total_spent_fen"] == 9900


def test_same_refund_no_replays(api_client, tenant, paid):
    first = api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 9900},
                            format="json")
    before = row_counts(tenant)

    again = api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 9900},
                            format="json")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert row_counts(tenant) == before
    assert api_client.get(f"{ORDERS}{paid['id']}/").json()["refunded_fen"] == 9900


def test_same_refund_no_with_other_amount_is_a_conflict(api_client, tenant, paid):
    api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 9900},
                    format="json")
    before = row_counts(tenant)

    response = api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 100},
                               format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "refund_conflict"
    assert row_counts(tenant) == before
    assert api_client.get(f"{ORDERS}{paid['id']}/").json()["refunded_fen"] == 9900


@pytest.mark.parametrize("payload", [
    {"refund_no": "R1", "amount_fen": 0},
    {"refund_no": "R1", "amount_fen": -100},
    {"refund_no": "R1", "amount_fen": "abc"},
    {"refund_no": "", "amount_fen": 100},
    {"amount_fen": 100},
    {"refund_no": "R1", "amount_fen": 100, "note": "x"},
])
def test_bad_refund_is_refused_and_writes_nothing(api_client, tenant, paid, payload):
    before = row_counts(tenant)

    response = api_client.post(refunds_url(paid["id"]), payload, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert row_counts(tenant) == before


def test_timeline_records_payment_and_refund(api_client, paid):
    api_client.post(refunds_url(paid["id"]), {"refund_no": "R1", "amount_fen": 9900},
                    format="json")

    events = api_client.get(f"/api/v1/members/{paid['member']}/timeline/").json()["results"]

    by_kind = {event["kind"]: event for event in events}
    assert by_kind["order.paid"]["occurred_at"] == "2026-11-01T10:00:00+08:00"
    assert by_kind["order.paid"]["data"] == {
        "order_id": paid["id"], "order_no": "TM20261101001", "channel": "tmall",
        "amount_fen": 29900}
    assert by_kind["order.refunded"]["data"] == {
        "order_id": paid["id"], "order_no": "TM20261101001", "refund_no": "R1",
        "amount_fen": 9900}
    assert [e["kind"] for e in events].count("order.paid") == 1
    assert [e["kind"] for e in events].count("order.refunded") == 1


# Bad input: a clear 4xx with a stable code, and nothing written.

def _without(key: str) -> dict:
    payload = order_payload()
    del payload[key]
    return payload


def _line(**changes) -> dict:
    return order_payload(lines=[{**ORDER["lines"][0], **changes}])


@pytest.mark.parametrize(("payload", "code", "field"), [
    (order_payload(amount_fen=-1), "validation_error", "amount_fen"),
    (order_payload(amount_fen=10_000_000_001), "validation_error", "amount_fen"),
    (order_payload(amount_fen="abc"), "validation_error", "amount_fen"),
    (order_payload(amount_fen=299.5), "validation_error", "amount_fen"),
    (order_payload(amount_fen=None), "validation_error", "amount_fen"),
    (_line(quantity=0), "validation_error", "lines"),
    (_line(price_fen=-1), "validation_error", "lines"),
    (_line(colour="red"), "validation_error", "lines"),
    (_without("lines"), "validation_error", "lines"),
    (order_payload(lines=[]), "validation_error", "lines"),
    (_without("buyer"), "validation_error", "buyer"),
    (order_payload(buyer={"identities": []}), "validation_error", "buyer"),
    (order_payload(coupon="X"), "validation_error", "coupon"),
    (order_payload(paid_at="yesterday"), "validation_error", "paid_at"),
    (order_payload(paid_at="2026-13-01T10:00:00+08:00"), "validation_error", "paid_at"),
    (order_payload(channel="taobao"), "validation_error", "channel"),
    (order_payload(order_no=""), "validation_error", "order_no"),
    (order_payload(order_no="X" * 65), "validation_error", "order_no"),
    (order_payload(store="NOPE"), "unknown_store", "store"),
    (order_payload(buyer={"identities": [{"kind": "phone", "value": "12345"}]}),
     "invalid_phone", None),
])
def test_bad_order_is_refused_and_writes_nothing(api_client, tenant, store, payload, code,
                                                 field):
    response = api_client.post(ORDERS, payload, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    if field:
        assert list(body["errors"]) == [field]
    assert set(row_counts(tenant).values()) == {0}


@pytest.mark.parametrize("body", ["[]", '"order"', "null", "{"])
def test_order_body_that_is_not_an_object_is_refused(api_client, tenant, store, body):
    response = api_client.generic("POST", ORDERS, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in {"validation_error", "malformed_json"}
    assert set(row_counts(tenant).values()) == {0}


def test_body_over_the_upload_limit_is_413(api_client, tenant, store, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    payload = order_payload(lines=[{**ORDER["lines"][0], "sku": f"SK-{n}"} for n in range(100)])
    body = json.dumps(payload)
    assert len(body) > 4096

    response = api_client.generic("POST", ORDERS, body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["message"]
    assert set(row_counts(tenant).values()) == {0}


def test_body_under_the_upload_limit_is_accepted(api_client, store, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    assert api_client.post(ORDERS, ORDER, format="json").status_code == 201


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "application/xml"])
def test_body_that_is_not_json_is_415(api_client, tenant, store, content_type):
    response = api_client.generic("POST", ORDERS, "order_no=TM1&amount_fen=1",
                                  content_type=content_type)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert set(row_counts(tenant).values()) == {0}


def test_json_nested_too_deep_is_400(api_client, tenant, store):
    response = api_client.generic("POST", ORDERS, "[" * 50_000 + "]" * 50_000,
                                  content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert set(row_counts(tenant).values()) == {0}


@pytest.mark.parametrize("first_touch", [
    {"campaign": "双11\u0000"},
    {"qr\u0000": "x"},
    {"campaign": "\ud800"},
    {"campaign": "x" * 5000},
])
def test_member_first_touch_the_database_cannot_store_is_400(api_client, tenant, first_touch):
    body = json.dumps({"identities": [PHONE], "first_touch": first_touch})

    response = api_client.generic("POST", "/api/v1/members/upsert/", body,
                                  content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == ["first_touch"]
    assert set(row_counts(tenant).values()) == {0}


def test_member_first_touch_is_kept_as_sent(api_client):
    first_touch = {"channel": "wechat_qr", "scene": "双11-门店", "nested": {"n": [1, 2]}}

    response = api_client.post("/api/v1/members/upsert/",
                               {"identities": [PHONE], "first_touch": first_touch}, format="json")

    assert response.status_code == 201
    assert response.json()["first_touch"] == first_touch


def test_an_order_at_another_store_fills_gaps_but_keeps_the_members_home_store(
        api_client, tenant, store):
    from tests.factories import StoreFactory

    with tenant_scope(tenant):
        StoreFactory(tenant=tenant, code="HZ001")
    member = api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}], "store": "SH001",
        "city": "上海"}, format="json").json()
    response = api_client.post("/api/v1/orders/", {
        "order_no": "HZ-1", "channel": "pos", "store": "HZ001",
        "paid_at": "2026-11-01T10:00:00+08:00", "amount_fen": 100,
        "buyer": {"identities": [{"kind": "phone", "value": "13800138000"}], "city": "杭州",
                  "name": "王芳"},
        "lines": [{"sku": "S", "product": "P", "quantity": 1, "price_fen": 100}]}, format="json")
    assert response.status_code == 201
    after = api_client.get(f"/api/v1/members/{member['id']}/").json()
    assert (after["store"], after["city"], after["name"]) == ("SH001", "上海", "王芳")
