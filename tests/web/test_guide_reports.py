"""The guide's reports on their own customers: the quick filters' order and the store
board's sales and rank (each guide's sales come from their own customers' orders)."""

import datetime as dt

import pytest
from django.utils import timezone

from members import reports
from members.services import member_upsert, order_ingest
from scrm.access import ALL_SCOPES, Actor
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def _order(actor, phone: str, number: str, amount_fen: int, days_ago: int) -> None:
    order_ingest(actor=actor, data={
        "order_no": number, "channel": "pos", "amount_fen": amount_fen,
        "paid_at": timezone.now() - dt.timedelta(days=days_ago),
        "buyer": {"identities": [{"kind": "phone", "value": phone}]},
        "lines": [{"sku": "S", "product": "P", "quantity": 1, "price_fen": amount_fen}]})


@pytest.fixture
def board(shop):
    """A second guide in the first guide's store whose customer spent more this month."""
    tenant, north = shop["tenant"], shop["stores"][0]
    system = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    with tenant_scope(tenant):
        rival = StaffFactory(tenant=tenant, role=Role.GUIDE, store=north, display_name="导购小张")
        member_upsert(actor=system, identities=[{"kind": "phone", "value": "13700137000"}],
                      profile={"name": "赵敏", "store": north, "guide": rival})
        _order(system, "13800138000", "A1", 30_000, days_ago=3)
        _order(system, "13800138000", "A2", 10_000, days_ago=200)
        _order(system, "13700137000", "B1", 50_000, days_ago=5)
    return {**shop, "rival": rival}


def test_performance_counts_the_guides_own_customers_orders_and_ranks_the_store(board):
    guide = board["staff"]["guide"]
    with tenant_scope(board["tenant"]):
        performance = reports.guide_performance(actor=Actor.for_membership(guide), days=30)
    assert (performance["sales_fen"], performance["orders"]) == (30_000, 1)
    assert (performance["rank"], performance["guides_in_store"]) == (2, 2)
    assert [(row["name"], row["sales_fen"], row["me"]) for row in performance["board"]] == [
        ("导购小张", 50_000, False), ("导购小王", 30_000, True)]
    assert (performance["customers"], performance["converted"]) == (1, 0)


def test_performance_reads_the_store_board_in_one_query_however_many_guides(board):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    guide, north = board["staff"]["guide"], board["stores"][0]

    def queries() -> int:
        with tenant_scope(board["tenant"]), CaptureQueriesContext(connection) as captured:
            reports.guide_performance(actor=Actor.for_membership(guide), days=30)
        return len(captured)

    before = queries()
    with tenant_scope(board["tenant"]):
        for number in range(3):
            StaffFactory(tenant=board["tenant"], role=Role.GUIDE, store=north,
                         display_name=f"新导购{number}")
    assert queries() == before
    with tenant_scope(board["tenant"]):
        performance = reports.guide_performance(actor=Actor.for_membership(guide), days=30)
    assert performance["guides_in_store"] == 5
    assert [row["sales_fen"] for row in performance["board"]] == [50_000, 30_000, 0, 0, 0]


def test_quick_filters_show_the_guides_customers_with_their_spend(board):
    guide = board["staff"]["guide"]
    actor = Actor.for_membership(guide)
    with tenant_scope(board["tenant"]):
        high = [(m.name, m.spent_fen, m.order_count) for m in reports.customers(
            actor=actor, quick="high_value")]
        dormant = list(reports.customers(actor=actor, quick="dormant"))
        everyone = [m.name for m in reports.customers(actor=actor)]
    assert high == [("王芳", 40_000, 2)]
    assert dormant == []  # the last order was 3 days ago
    assert everyone == ["王芳"]
