"""Real threads on PostgreSQL: a coupon grab never oversells; one member racing a limit gets
it once; retries with one key issue one coupon; one code scanned at two tills at once is
redeemed once."""

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services import coupon_issue, coupon_redeem
from members.models import Member
from members.services.numbers import member_numbers_allocate
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import issue, template_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32


def members_make(actor, count: int) -> list[Member]:
    with tenant_scope(actor.tenant):
        numbers = member_numbers_allocate(tenant_id=actor.tenant.pk, count=count)
        return Member.objects.bulk_create(
            [Member(tenant=actor.tenant, member_no=no, name=f"会员{no}") for no in numbers])


def rush(tenant, call: Callable[..., object], calls: list[dict]) -> list[str]:
    """Run ``call(**kwargs)`` for each of ``calls`` on the pool; each one's outcome."""

    def attempt(kwargs: dict) -> str:
        try:
            with tenant_scope(tenant):
                call(**kwargs)
            return "ok"
        except ApplicationError as exc:
            return exc.code
        finally:
            connection.close()  # each call on its own connection; none left open

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(attempt, calls))


def test_a_grab_for_100_coupons_by_300_members_issues_exactly_100(tenant, actor):
    template = template_create(actor, total_stock=100)
    members = members_make(actor, 300)

    outcomes = rush(tenant, coupon_issue, [
        {"actor": actor, "template": template, "member": member, "key": f"grab:{member.pk}",
         "source": "campaign"} for member in members])

    assert Counter(outcomes) == {"ok": 100, "out_of_stock": 200}
    winners = {member.pk for member, outcome in zip(members, outcomes, strict=True)
               if outcome == "ok"}
    with tenant_scope(tenant):
        assert CouponTemplate.objects.filter(pk=template.pk).values_list(
            "issued_count", "total_stock").get() == (100, 100)
        assert set(Coupon.objects.values_list("member_id", flat=True)) == winners
        assert Coupon.objects.count() == 100
        assert len(set(Coupon.objects.values_list("code", flat=True))) == 100


def test_one_member_racing_a_limit_of_two_gets_two(tenant, actor):
    template = template_create(actor, per_member_limit=2)
    [member] = members_make(actor, 1)

    outcomes = rush(tenant, coupon_issue, [
        {"actor": actor, "template": template, "member": member, "key": f"try:{n}",
         "source": "manual"} for n in range(20)])

    assert Counter(outcomes) == {"ok": 2, "limit_reached": 18}
    with tenant_scope(tenant):
        assert Coupon.objects.filter(member=member).count() == 2
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 2


def test_retries_with_one_key_issue_one_coupon(tenant, actor):
    template = template_create(actor, per_member_limit=0)
    [member] = members_make(actor, 1)
    codes = []

    def issue_and_note(**kwargs):
        codes.append(coupon_issue(**kwargs).code)

    outcomes = rush(tenant, issue_and_note, [
        {"actor": actor, "template": template, "member": member, "key": "api:retry-1",
         "source": "manual"}] * 20)

    assert Counter(outcomes) == {"ok": 20}
    with tenant_scope(tenant):
        assert list(Coupon.objects.values_list("code", flat=True)) == [codes[0]]
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 1
    assert set(codes) == {codes[0]}


def test_one_code_redeemed_at_twenty_tills_at_once_is_redeemed_once(tenant, actor):
    [member] = members_make(actor, 1)
    coupon = issue(actor, template_create(actor), member)

    outcomes = rush(tenant, coupon_redeem, [
        {"actor": actor, "code": coupon.code, "order_amount_fen": 20000 + n}
        for n in range(20)])

    assert Counter(outcomes) == {"ok": 1, "coupon_used": 19}
    winner = 20000 + outcomes.index("ok")
    with tenant_scope(tenant):
        assert Coupon.objects.filter(pk=coupon.pk).values_list(
            "status", "order_amount_fen", "discount_fen").get() == ("redeemed", winner, 2000)
