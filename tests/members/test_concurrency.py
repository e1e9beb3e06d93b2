"""Real threads against PostgreSQL: racing writers end with one row, and counters count once."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from members.models import Member, MemberIdentity, MemberStats, Order, Refund, TimelineEvent
from members.services import member_upsert, order_ingest
from scrm.access import ALL_SCOPES, Actor
from scrm.services import api_key_create
from scrm.tenancy import tenant_scope
from tests.members.test_api_orders import ORDER, order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released at the same moment; return the results
    (or the exceptions raised)."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work(index)
        except Exception as exc:  # the caller asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.fixture
def secret(tenant, store) -> str:
    _key, secret = api_key_create(tenant=tenant, name="race")
    return secret


def api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_racing_upserts_of_one_new_phone_make_one_member(tenant):
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))

    def upsert(index: int):
        with tenant_scope(tenant):
            member, outcome = member_upsert(
                actor=actor, identities=[{"kind": "phone", "value": "13800138000"}],
                profile={"city": "上海"})
            return member.pk, outcome

    results = race(16, upsert)

    assert not [r for r in results if isinstance(r, Exception)], results
    with tenant_scope(tenant):
        member = Member.objects.get()
        assert MemberIdentity.objects.get().member_id == member.pk
        assert TimelineEvent.objects.filter(kind="member.created").count() == 1
    assert {pk for pk, _outcome in results} == {member.pk}
    assert sorted(outcome for _pk, outcome in results) == ["created"] + ["updated"] * 15


def test_racing_posts_of_one_order_make_one_order(tenant, secret):
    responses = race(8, lambda index: api(secret).post("/api/v1/orders/", ORDER, format="json"))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    with tenant_scope(tenant):
        order = Order.objects.get()
        assert Member.objects.get().pk == order.member_id
        stats = MemberStats.objects.get()
        assert TimelineEvent.objects.filter(kind="order.paid").count() == 1
    assert (stats.order_count, stats.total_spent_fen) == (1, 29900)


def test_racing_orders_of_one_buyer_are_all_counted(tenant, secret):
    # The buyer exists already, with the order's store: no order touches the member row.
    api(secret).post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}], "store": "SH001"},
        format="json")

    responses = race(8, lambda index: api(secret).post(
        "/api/v1/orders/", order_payload(order_no=f"TM-{index}", amount_fen=100 + index,
                                         paid_at=f"2026-11-0{index + 1}T10:00:00+08:00"),
        format="json"))

    assert [r.status_code for r in responses] == [201] * 8, [r.content for r in responses]
    with tenant_scope(tenant):
        stats = MemberStats.objects.get()
    assert (stats.order_count, stats.total_spent_fen) == (8, sum(100 + i for i in range(8)))


def test_racing_refunds_with_one_refund_no_make_one_refund(tenant, secret):
    order = api(secret).post("/api/v1/orders/", ORDER, format="json").json()

    responses = race(8, lambda index: api(secret).post(
        f"/api/v1/orders/{order['id']}/refunds/", {"refund_no": "R1", "amount_fen": 9900},
        format="json"))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    with tenant_scope(tenant):
        assert Refund.objects.count() == 1
        assert Order.objects.get().refunded_fen == 9900
        stats = MemberStats.objects.get()
        assert TimelineEvent.objects.filter(kind="order.refunded").count() == 1
    assert (stats.total_spent_fen, stats.refunded_fen) == (20000, 9900)


def test_racing_refunds_never_exceed_the_amount_paid(tenant, secret):
    order = api(secret).post("/api/v1/orders/", ORDER, format="json").json()

    responses = race(8, lambda index: api(secret).post(
        f"/api/v1/orders/{order['id']}/refunds/", {"refund_no": f"R{index}", "amount_fen": 9900},
        format="json"))

    assert sorted(r.status_code for r in responses) == [201] * 3 + [400] * 5
    assert {r.json()["code"] for r in responses if r.status_code == 400} == {
        "refund_exceeds_paid"}
    with tenant_scope(tenant):
        assert Order.objects.get().refunded_fen == 29700
        assert Refund.objects.count() == 3


def _wait_until_someone_waits_for_a_lock() -> None:
    with connection.cursor() as cursor:
        for _attempt in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the second order never waited for the first")


def test_order_arriving_while_another_commits_still_counts_both(tenant):
    """Stats are recomputed from the orders: the second order must not compute them before
    the first commits, or it overwrites them without the first order."""
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))

    def data(order_no: str) -> dict:
        return {"order_no": order_no, "channel": "pos", "store": None,
                "paid_at": datetime(2026, 11, 1, 2, tzinfo=UTC), "amount_fen": 100,
                "buyer": {"identities": [{"kind": "phone", "value": "13800138000"}]},
                "lines": [{"sku": "S", "product": "口红", "quantity": 1, "price_fen": 100}]}

    with tenant_scope(tenant):
        order_ingest(actor=actor, data=data("P0"))
    first_written, release = threading.Event(), threading.Event()

    def first(index: int) -> None:
        with tenant_scope(tenant), transaction.atomic():
            order_ingest(actor=actor, data=data("P1"))
            first_written.set()
            release.wait(timeout=10)

    def second(index: int) -> None:
        first_written.wait(timeout=10)
        with tenant_scope(tenant):
            order_ingest(actor=actor, data=data("P2"))

    racers = threading.Thread(target=race, args=(2, lambda i: (first, second)[i](i)))
    racers.start()
    first_written.wait(timeout=10)
    _wait_until_someone_waits_for_a_lock()
    release.set()
    racers.join(timeout=30)

    with tenant_scope(tenant):
        stats = MemberStats.objects.get()
        assert Order.objects.count() == 3
    assert (stats.order_count, stats.total_spent_fen) == (3, 300)


def test_refunds_racing_a_merge_of_the_buyer_neither_deadlock_nor_lose_money(tenant, secret):
    buyer = api(secret).post("/api/v1/orders/", ORDER, format="json").json()
    survivor = api(secret).post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13900139000"}]}, format="json").json()

    def work(index: int):
        if index == 0:
            return api(secret).post(f"/api/v1/members/{survivor['id']}/merge/",
                                    {"member_id": buyer["member"]}, format="json")
        return api(secret).post(f"/api/v1/orders/{buyer['id']}/refunds/",
                                {"refund_no": f"R{index}", "amount_fen": 100}, format="json")

    responses = race(8, work)

    assert [getattr(r, "status_code", r) for r in responses] == [200] + [201] * 7
    with tenant_scope(tenant):
        stats = MemberStats.objects.get(member_id=survivor["id"])
        assert Order.objects.get().member_id == survivor["id"]
    assert (stats.order_count, stats.total_spent_fen, stats.refunded_fen) == (1, 29200, 700)
