"""Merging members moves their points; check-ins once a day, with a streak bonus."""

from datetime import date

import pytest

from members.models import MemberMerge
from members.services import member_merge
from points.models import PointsAccount, PointsCheckIn, PointsEntry, PointsLot, PointsPolicy
from points.services import (
    Ref,
    points_checkin,
    points_earn,
    points_redeem,
    points_reverse,
)
from points.services.policy import policy_get
from scrm.api.errors import ApplicationError
from tests.points.conftest import balance, books_balance, days


def account(member) -> tuple:
    return PointsAccount.objects.filter(member_id=member.pk).values_list(
        "balance", "shortfall", "lifetime_earned", "is_active").get()


def test_a_merge_moves_the_losers_points_lots_and_lifetime(in_tenant, actor, member,
                                                           other_member):
    points_earn(actor=actor, member=member, points=100, reason="a", expires_at=days(10))
    points_earn(actor=actor, member=other_member, points=50, reason="b", expires_at=days(5),
                ref=Ref("order", "9"))
    points_redeem(actor=actor, member=other_member, points=20, reason="兑换")
    loser_entries = list(PointsEntry.objects.filter(member_id=other_member.pk)
                         .values_list("id", "points", "balance_after"))

    record = member_merge(actor=actor, survivor=member, merged=other_member)

    assert record.moved["points"] == 30
    assert account(member) == (130, 0, 150, True)
    assert account(other_member) == (0, 0, 0, False)
    assert list(PointsLot.objects.filter(member_id=member.pk).order_by("expires_at")
                .values_list("earned", "remaining")) == [(50, 30), (100, 100)]
    out, into = PointsEntry.objects.filter(ref_type="member_merge").order_by("id")
    assert (out.member_id, out.kind, out.points, out.balance_after) == (
        other_member.pk, "adjust", -30, 0)
    assert (into.member_id, into.kind, into.points, into.balance_after) == (
        member.pk, "adjust", 30, 130)
    # The loser's own history stays as it was written.
    assert list(PointsEntry.objects.filter(member_id=other_member.pk).exclude(pk=out.pk)
                .values_list("id", "points", "balance_after")) == loser_entries
    books_balance(in_tenant)

    # The loser's order refunded later: its points come off the survivor.
    points_reverse(actor=actor, ref=Ref("order", "9"), reason="退款")
    assert account(member)[:2] == (80, 0)
    books_balance(in_tenant)


def test_a_merge_settles_one_members_shortfall_with_the_others_balance(
        in_tenant, actor, member, other_member):
    points_earn(actor=actor, member=member, points=100, reason="a")
    points_earn(actor=actor, member=other_member, points=50, reason="b", ref=Ref("order", "3"))
    points_redeem(actor=actor, member=other_member, points=50, reason="兑换")
    points_reverse(actor=actor, ref=Ref("order", "3"), reason="退款")
    assert account(other_member)[:2] == (0, 50)

    member_merge(actor=actor, survivor=member, merged=other_member)

    assert account(member)[:2] == (50, 0)
    assert MemberMerge.objects.get().moved["points"] == 0
    books_balance(in_tenant)


def test_points_for_a_merged_member_go_to_the_survivor(in_tenant, actor, member, other_member):
    member_merge(actor=actor, survivor=member, merged=other_member)
    other_member.refresh_from_db()

    result = points_earn(actor=actor, member=other_member, points=40, reason="迟到的积分")

    assert (result.entry.member_id, balance(member), balance(other_member)) == (
        member.pk, 40, 0)
    books_balance(in_tenant)


@pytest.fixture
def checkin_policy(in_tenant):
    policy_get()
    PointsPolicy.objects.update(checkin_points=5, checkin_streak_days=3, checkin_streak_bonus=20)


def test_check_ins_count_the_streak_and_pay_a_bonus_every_third_day(
        in_tenant, actor, member, checkin_policy):
    results = [points_checkin(actor=actor, member=member, day=date(2026, 11, day))
               for day in (1, 2, 3, 4, 6)]

    assert [(r.checkin.streak, r.checkin.points, r.balance, r.created) for r in results] == [
        (1, 5, 5, True), (2, 5, 10, True), (3, 25, 35, True), (4, 5, 40, True),
        (1, 5, 45, True)]
    assert PointsEntry.objects.filter(ref_type="checkin").count() == 5
    books_balance(in_tenant)


def test_checking_in_twice_a_day_answers_with_the_first(in_tenant, actor, member,
                                                      checkin_policy):
    first = points_checkin(actor=actor, member=member, day=date(2026, 11, 1))
    again = points_checkin(actor=actor, member=member, day=date(2026, 11, 1))

    assert (again.created, again.checkin.pk, again.balance) == (False, first.checkin.pk, 5)
    assert (PointsCheckIn.objects.count(), PointsEntry.objects.count()) == (1, 1)


def test_check_in_is_refused_when_the_policy_gives_nothing(in_tenant, actor, member):
    policy_get()
    PointsPolicy.objects.update(checkin_points=0, checkin_streak_bonus=0)

    with pytest.raises(ApplicationError) as refused:
        points_checkin(actor=actor, member=member)

    assert refused.value.code == "checkin_disabled"
    assert PointsCheckIn.objects.count() == 0
