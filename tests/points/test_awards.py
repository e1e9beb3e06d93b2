"""Points the policy awards by itself on birthdays, and the points balance as an audience
field."""

from datetime import date

import pytest

from members.models import Member
from points.models import PointsEntry, PointsPolicy
from points.services import points_award_birthdays, points_earn, points_redeem
from points.services.growth import member_tier_override
from points.services.policy import policy_get
from points.services.tiers import tier_program_save
from scrm.tenancy import tenant_scope
from tags.audience.expressions import Parser
from tags.audience.index import audience_bitmap, audience_fold, audience_rebuild
from tags.audience.sql import to_q
from tests.points.conftest import balance, new_member


def _birthday_points(tenant) -> dict[int, int]:
    with tenant_scope(tenant):
        return dict(PointsEntry.objects.filter(ref_type="birthday").values_list("member_id",
                                                                                "points"))


def test_birthday_points_once_a_year_with_the_level_s_own_amount(actor, tenant):
    with tenant_scope(tenant):
        policy_get()
        PointsPolicy.objects.update(birthday_points=100)
    plain = new_member(actor, birthday=date(1990, 12, 1))
    vip = new_member(actor, birthday=date(1985, 12, 1))
    new_member(actor, birthday=date(1990, 6, 1))
    with tenant_scope(tenant):
        program = tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "v1", "name": "普通", "threshold": 0},
            {"code": "v2", "name": "黑金", "threshold": 100000, "birthday_points": 888}])
        member_tier_override(actor=actor, program=program, member=vip,
                             level=program.levels.get(code="v2"), reason="测试")
        assert points_award_birthdays(day=date(2026, 12, 1)) == 2
        assert points_award_birthdays(day=date(2026, 12, 1)) == 0  # a rerun awards nothing
    assert _birthday_points(tenant) == {plain.pk: 100, vip.pk: 888}


def test_leap_day_birthdays_are_celebrated_on_28_february(actor, tenant):
    with tenant_scope(tenant):
        policy_get()
        PointsPolicy.objects.update(birthday_points=50)
    leap = new_member(actor, birthday=date(1996, 2, 29))
    with tenant_scope(tenant):
        assert points_award_birthdays(day=date(2027, 2, 28)) == 1
    assert balance(leap) == 50


@pytest.mark.postgres
def test_points_balance_audiences_agree_with_the_database(actor, tenant):
    members = [new_member(actor) for _ in range(6)]
    with tenant_scope(tenant):
        for member, points in zip(members[:4], (50, 150, 300, 1000), strict=True):
            points_earn(actor=actor, member=member, points=points, reason="测试")
        audience_rebuild()
        expressions = [
            {"field": "points_balance", "op": "gte", "value": 150},
            {"field": "points_balance", "op": "lt", "value": 100},  # includes no account
            {"field": "points_balance", "op": "between", "value": [0, 0]},
            {"not": {"field": "points_balance", "op": "gt", "value": 200}},
        ]

        def check():
            for raw in expressions:
                node = Parser().parse(raw)
                sql = set(Member.objects.filter(status="active").filter(to_q(node))
                          .values_list("member_no", flat=True))
                assert set(audience_bitmap(node)) == sql, raw

        check()
        assert len(audience_bitmap(Parser().parse(expressions[1]))) == 3
        points_redeem(actor=actor, member=members[3], points=900, reason="兑换")
        points_earn(actor=actor, member=members[5], points=400, reason="测试")
        check()  # the changed members are answered from the database
        assert len(audience_bitmap(Parser().parse(expressions[0]))) == 3
        audience_fold()
        check()
