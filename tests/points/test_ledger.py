"""Earn, redeem, adjust, reverse and restore: the ledger, the lots and the balance move
together, and refusals change nothing."""

from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from points.models import PointsEntry, PointsLot, PointsLotUse, PointsPolicy
from points.services import (
    InsufficientPoints,
    Ref,
    points_adjust,
    points_earn,
    points_redeem,
    points_restore,
    points_reverse,
)
from points.services.policy import expiry_for
from scrm.api.errors import ApplicationError
from scrm.models import AuditEntry
from tests.points.conftest import balance, books_balance, days, state

SHANGHAI = ZoneInfo("Asia/Shanghai")


def lots_of(member) -> list[tuple[int, int, str]]:
    return list(PointsLot.objects.filter(member_id=member.pk).order_by("expires_at", "id")
                .values_list("earned", "remaining", "status"))


def test_earn_makes_a_lot_expiring_at_the_end_of_the_year_after_next(in_tenant, actor, member):
    result = points_earn(actor=actor, member=member, points=100, reason="线下活动")

    entry = PointsEntry.objects.get()
    assert (entry.kind, entry.points, entry.balance_after, entry.reason, entry.operator) == (
        "earn", 100, 100, "线下活动", "system")
    assert (result.balance, result.shortfall, result.replayed) == (100, 0, False)
    lot = PointsLot.objects.get()
    earned_year = timezone.localtime(lot.earned_at).year
    assert lot.expires_at == datetime(earned_year + 3, 1, 1, tzinfo=SHANGHAI)
    assert (lot.earned, lot.remaining, lot.source_entry_id) == (100, 100, entry.pk)
    books_balance(in_tenant)


def test_fixed_days_expiry_ends_at_local_midnight():
    policy = PointsPolicy(expiry_mode="days", expiry_days=30)
    earned = datetime(2026, 11, 23, 17, 30, tzinfo=SHANGHAI)

    assert expiry_for(policy, earned) == datetime(2026, 12, 23, tzinfo=SHANGHAI)
    # 16:30 UTC on the 23rd is already the 24th in Shanghai.
    utc_evening = datetime(2026, 11, 23, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert expiry_for(policy, utc_evening) == datetime(2026, 12, 24, tzinfo=SHANGHAI)
    year_end = PointsPolicy(expiry_mode="year_end")
    assert expiry_for(year_end, earned) == datetime(2029, 1, 1, tzinfo=SHANGHAI)


def test_redeem_takes_the_oldest_expiring_lots_first(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=200, reason="a", expires_at=days(300))
    points_earn(actor=actor, member=member, points=50, reason="b", expires_at=days(5))
    points_earn(actor=actor, member=member, points=100, reason="c", expires_at=days(10))

    result = points_redeem(actor=actor, member=member, points=120, reason="兑换")

    assert result.balance == 230
    assert (result.entry.kind, result.entry.points, result.entry.balance_after) == (
        "redeem", -120, 230)
    assert lots_of(member) == [(50, 0, "active"), (100, 30, "active"), (200, 200, "active")]
    uses = PointsLotUse.objects.filter(entry_id=result.entry.pk).order_by("lot__expires_at")
    assert list(uses.values_list("lot__earned", "points")) == [(50, 50), (100, 70)]
    books_balance(in_tenant)


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(
        in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="a")
    before = state(in_tenant)

    with pytest.raises(InsufficientPoints) as refused:
        points_redeem(actor=actor, member=member, points=101, reason="兑换")

    assert (refused.value.code, refused.value.status_code) == ("insufficient_points", 409)
    assert state(in_tenant) == before


@pytest.mark.parametrize("points", [0, -5, True, 1.5])
def test_points_must_be_a_positive_integer(in_tenant, actor, member, points):
    before = state(in_tenant)
    for service in (points_earn, points_redeem):
        with pytest.raises(ApplicationError) as refused:
            service(actor=actor, member=member, points=points, reason="x")
        assert refused.value.code == "invalid_points"
    assert state(in_tenant) == before


def test_the_same_key_replays_the_first_answer(in_tenant, actor, member):
    first = points_earn(actor=actor, member=member, points=100, reason="活动",
                        idempotency_key="k-1")
    again = points_earn(actor=actor, member=member, points=100, reason="活动",
                        idempotency_key="k-1")

    assert (again.replayed, again.entry.pk) == (True, first.entry.pk)
    assert (again.balance, PointsEntry.objects.count(), PointsLot.objects.count()) == (100, 1, 1)


def test_the_same_key_for_another_request_is_refused(in_tenant, actor, member, other_member):
    points_earn(actor=actor, member=member, points=100, reason="活动", idempotency_key="k-1")
    before = state(in_tenant)

    for change in ({"points": 99}, {"reason": "别的"}, {"member": other_member}):
        kwargs = {"actor": actor, "member": member, "points": 100, "reason": "活动", **change}
        with pytest.raises(ApplicationError) as refused:
            points_earn(**kwargs, idempotency_key="k-1")
        assert (refused.value.code, refused.value.status_code) == ("idempotency_key_reused", 422)
    with pytest.raises(ApplicationError):
        points_redeem(actor=actor, member=member, points=100, reason="活动", idempotency_key="k-1")
    assert state(in_tenant) == before


def test_a_retried_redemption_replays_even_once_the_points_are_gone(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="a")
    first = points_redeem(actor=actor, member=member, points=80, reason="兑换",
                          idempotency_key="r-1")

    again = points_redeem(actor=actor, member=member, points=80, reason="兑换",
                          idempotency_key="r-1")

    assert (again.replayed, again.entry.pk) == (True, first.entry.pk)
    assert (balance(member), PointsEntry.objects.filter(kind="redeem").count()) == (20, 1)


def test_adjustments_go_both_ways_and_are_audited(in_tenant, actor, member):
    up = points_adjust(actor=actor, member=member, points=50, reason="补录积分", ip="10.0.0.1")
    down = points_adjust(actor=actor, member=member, points=-20, reason="误发扣回")

    assert [(e.kind, e.points, e.balance_after) for e in (up.entry, down.entry)] == [
        ("adjust", 50, 50), ("adjust", -20, 30)]
    audit = AuditEntry.objects.filter(action="points.adjust").order_by("id")
    assert [(a.target_type, a.target_id, a.data["points"], a.data["reason"], a.data["balance"])
            for a in audit] == [("pointsentry", up.entry.pk, 50, "补录积分", 50),
                                ("pointsentry", down.entry.pk, -20, "误发扣回", 30)]
    assert audit[0].ip == "10.0.0.1"
    assert member_lifetime(member) == 0  # adjustments are not earnings
    books_balance(in_tenant)


def member_lifetime(member) -> int:
    from points.models import PointsAccount

    return PointsAccount.objects.get(member_id=member.pk).lifetime_earned


def test_refused_adjustments_change_nothing(in_tenant, actor, member):
    points_adjust(actor=actor, member=member, points=30, reason="补录")
    before = state(in_tenant)
    audits = AuditEntry.objects.count()

    cases = [(-31, "扣回", "insufficient_points"), (0, "零", "invalid_points"),
             (5, "  ", "reason_required")]
    for points, reason, code in cases:
        with pytest.raises(ApplicationError) as refused:
            points_adjust(actor=actor, member=member, points=points, reason=reason)
        assert refused.value.code == code
    assert state(in_tenant) == before
    assert AuditEntry.objects.count() == audits


def test_reversing_unspent_points_takes_the_lot_back(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="订单", ref=Ref("order", "1"))

    result = points_reverse(actor=actor, ref=Ref("order", "1"), reason="退款")

    assert (result.entry.kind, result.entry.points, result.entry.shortfall_delta) == (
        "reverse", -100, 0)
    assert (result.balance, result.shortfall) == (0, 0)
    assert lots_of(member) == [(100, 0, "reversed")]
    assert member_lifetime(member) == 0
    assert points_reverse(actor=actor, ref=Ref("order", "1"), reason="再退") is None
    books_balance(in_tenant)


def test_reversing_spent_points_leaves_a_shortfall_that_later_earnings_pay(
        in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="订单", ref=Ref("order", "1"))
    points_redeem(actor=actor, member=member, points=70, reason="兑换")

    reversed_ = points_reverse(actor=actor, ref=Ref("order", "1"), reason="退款")

    assert (reversed_.entry.points, reversed_.entry.shortfall_delta) == (-30, 70)
    assert (reversed_.balance, reversed_.shortfall) == (0, 70)

    partly = points_earn(actor=actor, member=member, points=50, reason="签到")
    assert (partly.entry.points, partly.balance, partly.shortfall) == (50, 0, 20)
    settle = PointsEntry.objects.filter(ref_type="entry", ref_id=str(partly.entry.pk)).get()
    assert (settle.kind, settle.points, settle.shortfall_delta, settle.balance_after) == (
        "reverse", -50, -50, 0)

    paid_off = points_earn(actor=actor, member=member, points=100, reason="订单")
    assert (paid_off.balance, paid_off.shortfall) == (80, 0)
    assert [remaining for _e, remaining, _s in lots_of(member)] == [0, 0, 80]
    assert member_lifetime(member) == 150  # 100 - 100 + 50 + 100
    books_balance(in_tenant)


def test_partial_reversals_are_proportional_and_add_up_to_everything(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=99, reason="订单", ref=Ref("order", "7"))

    half = points_reverse(actor=actor, ref=Ref("order", "7"), reason="退款",
                          share=Fraction(1, 2), idempotency_key="refund:1")
    replay = points_reverse(actor=actor, ref=Ref("order", "7"), reason="退款",
                            share=Fraction(1, 2), idempotency_key="refund:1")
    rest = points_reverse(actor=actor, ref=Ref("order", "7"), reason="退款",
                          idempotency_key="refund:2")

    assert half.entry.points == -50  # 49.5 rounds half up
    assert (replay.replayed, replay.entry.pk) == (True, half.entry.pk)
    assert rest.entry.points == -49
    assert balance(member) == 0
    books_balance(in_tenant)


def test_a_reversal_takes_from_the_references_own_lot_first(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=40, reason="早到期", expires_at=days(3))
    points_earn(actor=actor, member=member, points=60, reason="订单", ref=Ref("order", "2"),
                expires_at=days(300))

    points_reverse(actor=actor, ref=Ref("order", "2"), reason="退款")

    assert lots_of(member) == [(40, 40, "active"), (60, 0, "reversed")]
    books_balance(in_tenant)


def test_a_cancelled_redemption_gives_the_points_back_to_their_lots(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="a", expires_at=days(10))
    points_earn(actor=actor, member=member, points=50, reason="b", expires_at=days(400))
    points_redeem(actor=actor, member=member, points=120, reason="兑换",
                  ref=Ref("mall_order", "M7"))
    assert lots_of(member) == [(100, 0, "active"), (50, 30, "active")]

    part = points_restore(actor=actor, ref=Ref("mall_order", "M7"), reason="部分取消",
                          points=20)
    assert (part.entry.kind, part.entry.points, part.balance) == ("reverse", 20, 50)
    assert lots_of(member) == [(100, 0, "active"), (50, 50, "active")]  # latest expiry first

    rest = points_restore(actor=actor, ref=Ref("mall_order", "M7"), reason="取消")
    assert (rest.entry.points, rest.balance) == (100, 150)
    assert lots_of(member) == [(100, 100, "active"), (50, 50, "active")]
    assert points_restore(actor=actor, ref=Ref("mall_order", "M7"), reason="取消") is None
    books_balance(in_tenant)


def test_points_of_a_lot_that_expired_meanwhile_are_not_given_back(in_tenant, actor, member):
    points_earn(actor=actor, member=member, points=100, reason="a", expires_at=days(10))
    points_redeem(actor=actor, member=member, points=60, reason="兑换",
                  ref=Ref("mall_order", "M8"))
    PointsLot.objects.update(expires_at=days(-1))  # as if the cancellation came much later

    result = points_restore(actor=actor, ref=Ref("mall_order", "M8"), reason="取消")

    assert (result.entry.points, result.balance) == (0, 40)
    assert "60 积分所在批次已过期" in result.entry.reason
    assert points_restore(actor=actor, ref=Ref("mall_order", "M8"), reason="取消") is None
    books_balance(in_tenant)
