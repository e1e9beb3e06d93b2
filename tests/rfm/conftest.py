"""Shared set-up for RFM and lifecycle: members made through the members service, orders
written straight as rows at chosen times (with the member stats refreshed, as ingest does),
and a fixed "now" every computation is given."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from members.models import Member, Order
from members.services import member_stats_refresh, member_upsert, refund_create
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
_numbers = itertools.count(1)


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


@pytest.fixture
def in_tenant(tenant):
    with tenant_scope(tenant):
        yield tenant


def new_member(actor: Actor, name: str = "") -> Member:
    with tenant_scope(actor.tenant):
        member, _outcome = member_upsert(
            actor=actor,
            identities=[{"kind": "phone", "value": f"1390000{next(_numbers):04d}"}],
            profile={"name": name})
    return member


def add_order(member: Member, *, at: datetime, amount_fen: int, refunded_fen: int = 0) -> Order:
    """One order of ``member`` paid at ``at`` (a refund already applied when given)."""
    status = Order.Status.PAID
    if refunded_fen:
        status = Order.Status.REFUNDED if refunded_fen == amount_fen \
            else Order.Status.PARTIALLY_REFUNDED
    with tenant_scope(member.tenant_id):
        order = Order.objects.create(
            tenant_id=member.tenant_id, member=member, channel="pos",
            order_no=f"T{next(_numbers):06d}", paid_at=at, amount_fen=amount_fen,
            refunded_fen=refunded_fen, status=status, content_hash="-")
        member_stats_refresh(member_ids=[member.pk])
    return order


def add_orders(member: Member, *, count: int, total_fen: int, last_at: datetime,
               spacing: timedelta = DAY) -> None:
    """``count`` orders adding up to ``total_fen``, the last one at ``last_at`` and each
    earlier one ``spacing`` before the next."""
    share, rest = divmod(total_fen, count)
    for i in range(count):
        add_order(member, at=last_at - spacing * i, amount_fen=share + (rest if i == 0 else 0))


def refund(actor: Actor, order: Order, amount_fen: int) -> None:
    with tenant_scope(actor.tenant):
        refund_create(actor=actor, order=order, refund_no=f"R{order.pk}-{amount_fen}",
                      amount_fen=amount_fen)


# The known dataset: ten members whose days since their last order are 0..9, with order
# counts and spend chosen so each of the eight segments appears.  Quintile cut points over
# ten distinct values fall on the 2nd, 4th, 6th and 8th smallest:
#   R: days [1, 3, 5, 7]; F: orders above [2, 4, 6, 8]; M: spend above 2k..8k yuan.
# name: (days since the last order, orders, spend rank: spend = rank x 1,000 yuan)
KNOWN = {
    "A": (0, 10, 10), "B": (1, 1, 9), "C": (2, 9, 1), "D": (3, 2, 2), "E": (4, 5, 5),
    "F": (5, 6, 6), "G": (6, 8, 8), "H": (7, 3, 7), "I": (8, 7, 3), "J": (9, 4, 4),
}
# What the cut points give them: (R, F, M) and the segment.
KNOWN_SCORES = {
    "A": (5, 5, 5, "important_value"), "B": (5, 1, 5, "important_develop"),
    "C": (4, 5, 1, "general_value"), "D": (4, 1, 1, "general_develop"),
    "E": (3, 3, 3, "important_value"), "F": (3, 3, 3, "important_value"),
    "G": (2, 4, 4, "important_keep"), "H": (2, 2, 4, "important_retain"),
    "I": (1, 4, 2, "general_keep"), "J": (1, 2, 2, "general_retain"),
}


@pytest.fixture
def known(actor) -> dict[str, Member]:
    members = {}
    for name, (days, orders, rank) in KNOWN.items():
        member = new_member(actor, name)
        # two hours into the day, so the whole days since the last order are exactly ``days``
        add_orders(member, count=orders, total_fen=rank * 100_000,
                   last_at=NOW - days * DAY - timedelta(hours=2), spacing=timedelta(days=3))
        members[name] = member
    return members
