"""Expiry: due lots become expire entries, set-based and batched, once each; points that
have expired are never spent; what expires soon is reported."""

from datetime import timedelta

import pytest
from django.utils import timezone

from points.models import PointsEntry, PointsLot
from points.selectors import members_expiring, points_expiring
from points.services import InsufficientPoints, points_earn, points_expire, points_redeem
from points.tasks import points_expire_all_task
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tests.points.conftest import balance, books_balance, days, new_member, state


def test_due_lots_expire_and_only_those(in_tenant, actor, member):
    part = points_earn(actor=actor, member=member, points=30, reason="b", expires_at=days(1))
    points_earn(actor=actor, member=member, points=100, reason="c", expires_at=days(30))
    points_redeem(actor=actor, member=member, points=20, reason="兑换")  # 20 of the 30
    gone = points_earn(actor=actor, member=member, points=50, reason="a", expires_at=days(2))
    # Time passes: both earlier lots are now past their expiry.
    PointsLot.objects.filter(source_entry_id=gone.entry.pk).update(expires_at=days(-2))
    PointsLot.objects.filter(source_entry_id=part.entry.pk).update(expires_at=days(-1))

    lots, points = points_expire()

    assert (lots, points) == (2, 60)
    expired = PointsEntry.objects.filter(kind="expire").order_by("id")
    lot_ids = {lot.source_entry_id: lot.pk for lot in PointsLot.objects.all()}
    assert [(e.points, e.balance_after, e.idempotency_key, e.ref_type) for e in expired] == [
        (-50, 110, f"expire:{lot_ids[gone.entry.pk]}", "lot"),
        (-10, 100, f"expire:{lot_ids[part.entry.pk]}", "lot"),
    ]
    assert balance(member) == 100
    assert sorted(PointsLot.objects.values_list("remaining", "status")) == [
        (0, "expired"), (0, "expired"), (100, "active")]
    assert points_expire() == (0, 0)
    books_balance(in_tenant)


def test_expired_points_are_never_spent_even_before_the_job_runs(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=50, reason="a", expires_at=days(-1))
    points_earn(actor=actor, member=member, points=30, reason="b", expires_at=days(30))
    before = state(in_tenant)

    with pytest.raises(InsufficientPoints) as refused:
        points_redeem(actor=actor, member=member, points=40, reason="兑换")

    assert str(refused.value.detail) == "积分不足：可用 30，需要 40。"
    assert state(in_tenant) == before  # the expiry it wrote first rolled back with it
    result = points_redeem(actor=actor, member=member, points=30, reason="兑换")
    assert result.balance == 0
    assert list(PointsEntry.objects.order_by("id").values_list("kind", "points")) == [
        ("earn", 50), ("earn", 30), ("expire", -50), ("redeem", -30)]
    books_balance(in_tenant)


def test_expiry_runs_in_batches_with_running_balances(in_tenant, actor, member, other_member):
    for n in range(3):
        points_earn(actor=actor, member=member, points=10 + n, reason="a",
                    expires_at=days(-3 + n * 0.5))
    for n in range(2):
        points_earn(actor=actor, member=other_member, points=100, reason="b",
                    expires_at=days(-2.9 + n * 0.5))
    points_earn(actor=actor, member=member, points=5, reason="c", expires_at=days(9))

    assert points_expire(batch_size=2) == (5, 233)

    mine = PointsEntry.objects.filter(member_id=member.pk, kind="expire").order_by("id")
    assert list(mine.values_list("points", "balance_after")) == [(-10, 28), (-11, 17), (-12, 5)]
    theirs = PointsEntry.objects.filter(member_id=other_member.pk, kind="expire")
    assert sorted(theirs.values_list("points", "balance_after")) == [(-100, 0), (-100, 100)]
    books_balance(in_tenant)


def test_expiring_soon_for_a_member_and_the_tenant(in_tenant, actor, member, other_member):
    points_earn(actor=actor, member=member, points=10, reason="a", expires_at=days(5))
    points_earn(actor=actor, member=member, points=20, reason="b", expires_at=days(20))
    points_earn(actor=actor, member=member, points=40, reason="c", expires_at=days(60))
    points_earn(actor=actor, member=other_member, points=7, reason="d", expires_at=days(25))
    first = PointsLot.objects.order_by("expires_at").first().expires_at

    assert points_expiring(member=member, within_days=30) == {
        "points": 30, "first_expires_at": first}
    assert points_expiring(within_days=30)["points"] == 37
    assert points_expiring(within_days=90)["points"] == 77
    assert [(row["member_id"], row["points"]) for row in members_expiring(within_days=30)] == [
        (member.pk, 30), (other_member.pk, 7)]


def test_the_periodic_task_expires_every_tenant(tenant, other_tenant, actor):
    other_actor = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    mine = new_member(actor)
    theirs = new_member(other_actor)
    for who, member in ((actor, mine), (other_actor, theirs)):
        with tenant_scope(who.tenant):
            points_earn(actor=who, member=member, points=10, reason="a",
                        expires_at=timezone.now() - timedelta(hours=1))
            points_earn(actor=who, member=member, points=3, reason="b", expires_at=days(9))

    points_expire_all_task()

    assert (balance(mine), balance(theirs)) == (3, 3)
    for who in (tenant, other_tenant):
        with tenant_scope(who):
            assert PointsEntry.objects.filter(kind="expire").count() == 1
        books_balance(who)
