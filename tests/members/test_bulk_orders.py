import threading
import time

import pytest
from django.db import connection, transaction

from members.identities import normalize_identity
from members.models import Member, MemberIdentity, MemberStats, Order, OrderLine, TimelineEvent
from members.services import member_upsert, order_ingest_bulk
from members.signals import member_created, order_paid
from scrm.access import Actor
from scrm.tenancy import tenant_scope
from tests.conftest import client_for

BULK = "/api/v1/orders/bulk/"
UPSERT = "/api/v1/members/upsert/"


def order(no, phone=None, amount=5000, **extra):
    """An order of two lines that add up to ``amount``."""
    phone = phone or "13800138000"
    buyer = extra.pop("buyer", {"identities": [{"kind": "phone", "value": phone}]})
    first = amount // 2
    return {
        "order_no": no,
        "channel": "pos",
        "paid_at": "2026-11-01T10:00:00+08:00",
        "amount_fen": amount,
        "buyer": buyer,
        "lines": [
            {"sku": "S1", "product": "口红", "quantity": 1, "price_fen": first},
            {"sku": "S2", "product": "眼霜", "quantity": 1, "price_fen": amount - first},
        ],
        **extra,
    }


def post(client, orders):
    return client.post(BULK, {"orders": orders}, format="json")


def counts(tenant):
    with tenant_scope(tenant):
        return {
            model.__name__: model.objects.count()
            for model in (Member, MemberIdentity, Order, OrderLine, TimelineEvent, MemberStats)
        }


def stats_of(tenant, member_id):
    with tenant_scope(tenant):
        stats = MemberStats.objects.get(member_id=member_id)
    return stats.order_count, stats.total_spent_fen


def test_each_order_gets_its_own_result(api_client, tenant, store):
    response = post(
        api_client,
        [
            order("A1", store="SH001"),
            order("A2", phone="12345"),
            order("A3", store="NOPE"),
            {"order_no": "A4", "channel": "pos"},
            order("A5", phone="13900139000", amount=800),
        ],
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    results = body["results"]
    assert (body["created"], body["existing"], body["failed"]) == (2, 0, 3)
    assert [(r["index"], r["status"], r.get("code")) for r in results] == [
        (0, "created", None),
        (1, "error", "invalid_phone"),
        (2, "error", "unknown_store"),
        (3, "error", "validation_error"),
        (4, "created", None),
    ]
    assert results[2]["errors"] == {"store": ["未知门店编码"]}
    assert results[2]["message"] == "未知门店编码：NOPE"
    assert set(results[3]["errors"]) == {"paid_at", "amount_fen", "buyer", "lines"}
    with tenant_scope(tenant):
        first = Order.objects.get(order_no="A1")
        assert (results[0]["id"], results[0]["member"]) == (first.pk, first.member_id)
        assert first.store == store
        assert first.member.store == store
        assert first.member.phone_masked == "138****8000"
        assert sorted(first.lines.values_list("sku", "price_fen")) == [("S1", 2500), ("S2", 2500)]
        assert sorted(Order.objects.values_list("order_no", flat=True)) == ["A1", "A5"]
        assert sorted(Member.objects.values_list("member_no", flat=True)) == [1, 2]


def test_one_buyer_in_two_orders_becomes_one_member(api_client, tenant):
    phone_only = order("B1", amount=3000)
    with_openid = order(
        "B2",
        amount=7000,
        buyer={
            "identities": [
                {"kind": "wechat_openid", "app_id": "wx1", "value": "oBuyer"},
                {"kind": "phone", "value": "+86 138 0013 8000"},
            ],
            "name": "王芳",
            "city": "上海",
        },
    )
    body = post(api_client, [phone_only, with_openid]).json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    member_id = body["results"][0]["member"]
    assert body["results"][1]["member"] == member_id
    assert stats_of(tenant, member_id) == (2, 10000)
    with tenant_scope(tenant):
        member = Member.objects.get()
        assert (member.pk, member.member_no, member.name, member.city) == (
            member_id, 1, "王芳", "上海"
        )
        assert sorted(MemberIdentity.objects.values_list("kind", "display")) == [
            ("phone", "138****8000"),
            ("wechat_openid", "oBuyer"),
        ]
        timeline = list(
            TimelineEvent.objects.order_by("id").values_list("kind", flat=True)
        )
    assert timeline == [
        "member.created",
        "identity.added",
        "order.paid",
        "identity.added",
        "member.updated",
        "order.paid",
    ]


def test_known_buyer_is_found_by_phone(api_client, tenant):
    known = api_client.post(
        UPSERT, {"identities": [{"kind": "phone", "value": "13800138000"}], "name": "王芳"},
        format="json",
    ).json()
    body = post(api_client, [order("C1", phone="138-0013-8000", amount=1200)]).json()
    assert body["results"] == [
        {"index": 0, "status": "created", "id": body["results"][0]["id"], "member": known["id"]}
    ]
    assert stats_of(tenant, known["id"]) == (1, 1200)
    with tenant_scope(tenant):
        assert Member.objects.count() == 1
        assert MemberIdentity.objects.count() == 1
        assert Member.objects.get().name == "王芳"


def test_known_buyer_keeps_their_store_and_only_gaps_are_filled(api_client, tenant, store):
    from tests.factories import StoreFactory

    with tenant_scope(tenant):
        StoreFactory(tenant=tenant, code="HZ001")
    known = api_client.post(
        UPSERT,
        {"identities": [{"kind": "phone", "value": "13800138000"}], "store": "SH001",
         "city": "上海"},
        format="json",
    ).json()
    buyer = {"identities": [{"kind": "phone", "value": "13800138000"}], "city": "杭州",
             "name": "王芳"}
    body = post(api_client, [order("J1", store="HZ001", buyer=buyer)]).json()
    assert body["results"][0]["member"] == known["id"]
    after = api_client.get(f"/api/v1/members/{known['id']}/").json()
    assert (after["store"], after["city"], after["name"]) == ("SH001", "上海", "王芳")


def test_resent_batch_answers_existing_and_writes_nothing(api_client, tenant, store):
    batch = [order("D1", store="SH001"), order("D2", phone="13900139000"), order("D3")]
    first = post(api_client, batch).json()
    before = counts(tenant)
    again = post(api_client, batch).json()
    assert (again["created"], again["existing"], again["failed"]) == (0, 3, 0)
    assert [(r["status"], r["id"], r["member"]) for r in again["results"]] == [
        ("existing", r["id"], r["member"]) for r in first["results"]
    ]
    assert counts(tenant) == before
    assert before == {
        "Member": 2,
        "MemberIdentity": 2,
        "Order": 3,
        "OrderLine": 6,
        "TimelineEvent": 7,
        "MemberStats": 2,
    }


def test_same_order_no_with_other_content_is_a_conflict(api_client, tenant):
    post(api_client, [order("E1", amount=5000)])
    before = counts(tenant)
    body = post(api_client, [order("E1", amount=4000), order("E1", amount=5000)]).json()
    assert [(r["status"], r.get("code")) for r in body["results"]] == [
        ("error", "order_conflict"),
        ("existing", None),
    ]
    assert body["results"][0]["message"] == "订单号 E1 已存在，且内容不同。"
    assert counts(tenant) == before
    with tenant_scope(tenant):
        assert Order.objects.get().amount_fen == 5000


def test_repeats_within_one_batch(api_client, tenant):
    body = post(
        api_client, [order("F1", amount=5000), order("F1", amount=5000), order("F1", amount=10)]
    ).json()
    first, repeat, changed = body["results"]
    assert (first["status"], repeat["status"], changed["status"]) == (
        "created", "existing", "error"
    )
    assert (repeat["id"], repeat["member"]) == (first["id"], first["member"])
    assert changed["code"] == "order_conflict"
    assert stats_of(tenant, first["member"]) == (1, 5000)


def test_more_than_1000_orders_is_refused(api_client, tenant):
    response = post(api_client, [order(f"G{n}") for n in range(1001)])
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert counts(tenant)["Order"] == 0


def test_stats_add_up_across_batches(api_client, tenant):
    post(api_client, [order("H1", amount=1000), order("H2", phone="13900139000", amount=1)])
    body = post(api_client, [order("H3", amount=2500, paid_at="2026-11-03T09:00:00+08:00")]).json()
    member_id = body["results"][0]["member"]
    assert stats_of(tenant, member_id) == (2, 3500)
    with tenant_scope(tenant):
        stats = MemberStats.objects.get(member_id=member_id)
    assert stats.first_order_at.isoformat() == "2026-11-01T02:00:00+00:00"
    assert stats.last_order_at.isoformat() == "2026-11-03T01:00:00+00:00"
    assert api_client.get(f"/api/v1/members/{member_id}/").json()["stats"]["order_count"] == 2


def test_buyer_of_two_known_members_merges_them(api_client, tenant):
    older = api_client.post(
        UPSERT, {"identities": [{"kind": "phone", "value": "13800138000"}]}, format="json"
    ).json()
    newer = api_client.post(
        UPSERT, {"identities": [{"kind": "wechat_unionid", "value": "uX1"}]}, format="json"
    ).json()
    both = {"identities": [
        {"kind": "phone", "value": "13800138000"},
        {"kind": "wechat_unionid", "value": "uX1"},
    ]}
    body = post(api_client, [order("M1", buyer=both), order("M2", phone="13900139000")]).json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    assert body["results"][0]["member"] == older["id"]
    assert stats_of(tenant, older["id"]) == (1, 5000)
    with tenant_scope(tenant):
        assert Member.objects.get(pk=newer["id"]).merged_into_id == older["id"]


def test_other_tenant_sees_none_of_the_orders(api_client, other_api_client, tenant, other_tenant):
    created = post(api_client, [order("K1")]).json()["results"][0]
    assert other_api_client.get(f"/api/v1/orders/{created['id']}/").status_code == 404
    assert other_api_client.get("/api/v1/orders/").json()["results"] == []
    theirs = post(other_api_client, [order("K1", amount=1)]).json()["results"][0]
    assert theirs["status"] == "created"
    assert theirs["member"] != created["member"]
    with tenant_scope(tenant):
        assert list(Order.objects.values_list("amount_fen", flat=True)) == [5000]
    with tenant_scope(other_tenant):
        assert list(Order.objects.values_list("amount_fen", flat=True)) == [1]


def test_read_only_key_cannot_post(tenant):
    client = client_for(tenant, scopes=["orders:read"])
    response = post(client, [order("L1")])
    assert response.status_code == 403
    assert counts(tenant)["Order"] == 0


def test_signals_fire_once_after_commit(tenant, django_capture_on_commit_callbacks):
    paid, created = [], []
    order_paid.connect(lambda **kw: paid.append(kw["order_ids"]), weak=False, dispatch_uid="t1")
    member_created.connect(lambda **kw: created.append(kw["member_id"]), weak=False,
                           dispatch_uid="t2")
    try:
        with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
            results = order_ingest_bulk(actor=Actor(tenant=tenant), orders=[
                (0, validated(order("N1"))),
                (1, validated(order("N2", phone="13900139000"))),
                (2, validated(order("N3"))),
            ])
    finally:
        order_paid.disconnect(dispatch_uid="t1")
        member_created.disconnect(dispatch_uid="t2")
    assert paid == [[r["id"] for r in results]]
    assert created == sorted({r["member"] for r in results})


def validated(data):
    from members.api.serializers import OrderInput

    serializer = OrderInput(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@pytest.mark.postgres  # SQLite splits bulk inserts at 999 parameters
def test_query_count_does_not_grow_with_the_batch(tenant, django_assert_max_num_queries):
    actor = Actor(tenant=tenant)

    def batch(prefix, size):
        """New buyers, and one who bought before."""
        return [
            (n, validated(order(f"{prefix}{n}", phone=f"1390013{n:04d}" if n else None)))
            for n in range(size)
        ]

    with tenant_scope(tenant):
        order_ingest_bulk(actor=actor, orders=[(0, validated(order("SEED")))])
        with django_assert_max_num_queries(20) as small_queries:
            order_ingest_bulk(actor=actor, orders=batch("Q", 5))
        with django_assert_max_num_queries(20) as large_queries:
            order_ingest_bulk(actor=actor, orders=batch("R", 300))
    assert len(large_queries.captured_queries) == len(small_queries.captured_queries)


def summary(client):
    """What a batch left behind, in terms that do not depend on ids."""
    members = {}
    for member in client.get("/api/v1/members/", {"page_size": 500}).json()["results"]:
        timeline = client.get(f"/api/v1/members/{member['id']}/timeline/").json()["results"]
        members[member["id"]] = (
            member["member_no"], member["name"], member["gender"], member["city"],
            member["store"], member["phone"],
            sorted((i["kind"], i["value"]) for i in member["identities"]),
            member["stats"]["order_count"], member["stats"]["total_spent_fen"],
            sorted(event["kind"] for event in timeline),
        )
    orders = sorted(
        (o["order_no"], members[o["member"]][0], o["amount_fen"], o["store"])
        for o in client.get("/api/v1/orders/", {"page_size": 500}).json()["results"]
    )
    return sorted(members.values()), orders


def test_bulk_leaves_what_one_by_one_ingest_leaves(tenant, other_tenant):
    from tests.factories import StoreFactory

    for owner in (tenant, other_tenant):
        with tenant_scope(owner):
            StoreFactory(tenant=owner, code="SH001")
            StoreFactory(tenant=owner, code="BJ001")
    known = {
        "identities": [{"kind": "phone", "value": "13700137000"}],
        "name": "老客",
        "store": "SH001",
    }
    openid = {"kind": "wechat_openid", "app_id": "wx1", "value": "oNew"}
    orders = [
        order("P1", phone="13700137000", store="BJ001"),
        order("P2", buyer={"identities": [openid], "name": "新客", "gender": "female"}),
        order("P3", buyer={"identities": [openid, {"kind": "phone", "value": "13600136000"}],
                           "city": "杭州"}, store="SH001"),
        order("P4", phone="13600136000", amount=100),
        order("P4", phone="13600136000", amount=100),
        order("P5", phone="13500135000", store="NOPE"),
        order("P6", phone="13500135000", amount=7),
        order("P4", phone="13600136000", amount=999),
        order("P7", buyer={"identities": [{"kind": "email", "value": "A@Example.com"}]}),
    ]
    one_by_one, bulk = client_for(tenant), client_for(other_tenant)
    for client in (one_by_one, bulk):
        client.post(UPSERT, known, format="json")
    single = [one_by_one.post("/api/v1/orders/", data, format="json") for data in orders]
    results = post(bulk, orders).json()["results"]
    assert [r["status"] for r in results] == [
        "created", "created", "created", "created", "existing", "error", "created", "error",
        "created",
    ]
    assert [r.status_code for r in single] == [201, 201, 201, 201, 200, 400, 201, 409, 201]
    assert [r.get("code") for r in results] == [
        s.json().get("code") if s.status_code >= 400 else None for s in single
    ]
    assert summary(bulk) == summary(one_by_one)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_the_same_buyers_agree(tenant):
    actor = Actor(tenant=tenant)
    batches = [
        [(n, validated(order(f"X{n}", phone=f"1380013{n % 10:04d}"))) for n in range(40)],
        [(n, validated(order(f"X{n}", phone=f"1380013{n % 10:04d}"))) for n in range(20, 60)],
    ]
    outcomes, errors = [], []
    barrier = threading.Barrier(len(batches))

    def run(orders):
        try:
            barrier.wait(timeout=10)
            with tenant_scope(tenant):
                outcomes.append(order_ingest_bulk(actor=actor, orders=orders))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(orders,)) for orders in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r["status"] for outcome in outcomes for r in outcome) == (
        ["created"] * 60 + ["existing"] * 20
    )
    with tenant_scope(tenant):
        assert Order.objects.count() == 60
        assert Member.objects.count() == 10
        assert sorted(MemberStats.objects.values_list("order_count", flat=True)) == [6] * 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_buyer_created_by_a_concurrent_request_is_found_not_retried(tenant):
    """The batch plans a new member for a buyer another request is creating; once that one
    commits, the batch's orders of that buyer go to its member, the others stay set-based."""
    actor = Actor(tenant=tenant)
    created, release, results = threading.Event(), threading.Event(), []

    def other_request():
        try:
            with tenant_scope(tenant), transaction.atomic():
                member_upsert(actor=actor, identities=[{"kind": "phone", "value": "13800130001"}])
                created.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    def batch():
        try:
            with tenant_scope(tenant):
                results.append(order_ingest_bulk(actor=actor, orders=[
                    (0, validated(order("C0", phone="13800130001"))),
                    (1, validated(order("C1", phone="13800130002"))),
                ]))
        finally:
            connection.close()

    with tenant_scope(tenant):  # the member-number sequence exists: nothing else waits
        member_upsert(actor=actor, identities=[{"kind": "phone", "value": "13800130009"}])
    threads = [threading.Thread(target=other_request), threading.Thread(target=batch)]
    threads[0].start()
    assert created.wait(timeout=10)
    threads[1].start()
    wait_for_a_lock_wait()  # the batch has planned a new member and waits on the identity
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert [r["status"] for r in results[0]] == ["created", "created"]
    with tenant_scope(tenant):
        first = MemberIdentity.objects.get(value=normalize_identity("phone", "13800130001").value)
        assert Order.objects.get(order_no="C0").member_id == first.member_id
        assert Member.objects.count() == 3
        assert MemberIdentity.objects.count() == 3
        assert TimelineEvent.objects.filter(kind="member.created").count() == 3
        assert sorted(MemberStats.objects.values_list("order_count", flat=True)) == [0, 1, 1]


def wait_for_a_lock_wait() -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("no session waited on a lock")
