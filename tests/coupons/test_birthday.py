"""The birthday coupon of a member's level, on their birthday, once a year."""

from datetime import date

from django.conf import settings
from django.utils import timezone

from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupons_issue_birthdays
from campaigns.coupons.tasks import coupons_issue_birthdays_all_task
from points.services.growth import member_tier_override
from points.services.policy import local_date
from points.services.tiers import tier_program_save
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import template_create
from tests.points.conftest import new_member


def _program(actor, coupon: str = "bday"):
    with tenant_scope(actor.tenant):
        return tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "v1", "name": "普通", "threshold": 0},
            {"code": "v2", "name": "黑金", "threshold": 100000, "birthday_coupon": coupon}])


def _level(actor, program, member, code: str = "v2") -> None:
    with tenant_scope(actor.tenant):
        member_tier_override(actor=actor, program=program, member=member,
                             level=program.levels.get(code=code), reason="测试")


def _birthday_coupons(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(Coupon.objects.filter(source="birthday").values_list(
            "member_id", "idempotency_key", "ref"))


def test_members_of_a_level_with_a_birthday_coupon_get_it_once_a_year(tenant, actor):
    template_create(actor, code="bday", name="生日券", per_member_limit=0)  # one a year
    program = _program(actor)
    vip = new_member(actor, birthday=date(1985, 12, 1))
    plain = new_member(actor, birthday=date(1990, 12, 1))
    other_day = new_member(actor, birthday=date(1985, 6, 1))
    _level(actor, program, vip)
    _level(actor, program, plain, "v1")
    _level(actor, program, other_day)

    with tenant_scope(tenant):
        assert coupons_issue_birthdays(day=date(2026, 12, 1)) == 1
        assert coupons_issue_birthdays(day=date(2026, 12, 1)) == 0  # a rerun issues nothing
        assert coupons_issue_birthdays(day=date(2027, 12, 1)) == 1  # next year's

    assert _birthday_coupons(tenant) == [(vip.pk, f"birthday:{vip.pk}:2026", "2026"),
                                         (vip.pk, f"birthday:{vip.pk}:2027", "2027")]


def test_leap_day_birthdays_are_celebrated_on_28_february(tenant, actor):
    template_create(actor, code="bday", per_member_limit=0)
    program = _program(actor)
    leap = new_member(actor, birthday=date(1996, 2, 29))
    _level(actor, program, leap)

    with tenant_scope(tenant):
        assert coupons_issue_birthdays(day=date(2027, 2, 28)) == 1
        assert coupons_issue_birthdays(day=date(2028, 2, 28)) == 0  # a leap year: the 29th
        assert coupons_issue_birthdays(day=date(2028, 2, 29)) == 1


def test_a_level_naming_no_template_is_skipped(tenant, actor):
    program = _program(actor, coupon="nope")
    member = new_member(actor, birthday=date(1985, 12, 1))
    _level(actor, program, member)

    with tenant_scope(tenant):
        assert coupons_issue_birthdays(day=date(2026, 12, 1)) == 0


def test_the_daily_task_runs_next_to_the_points_birthday_job(tenant, actor):
    template_create(actor, code="bday")
    program = _program(actor)
    today = local_date(timezone.now())
    member = new_member(actor, birthday=date(1990, today.month, min(today.day, 28)))
    _level(actor, program, member)

    coupons_issue_birthdays_all_task()

    if today.day <= 28:
        assert [row[0] for row in _birthday_coupons(tenant)] == [member.pk]
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["coupons-birthdays"]["task"] == (
        "campaigns.coupons.tasks.coupons_issue_birthdays_all_task")
    assert schedule["coupons-expire"]["task"] == "campaigns.coupons.tasks.coupons_expire_all_task"
