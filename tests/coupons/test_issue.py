"""Issuing one coupon: its code and window, the idempotency key, and every refusal (which
changes nothing)."""

from datetime import timedelta

import pytest

from campaigns.coupons import codes, signals
from campaigns.coupons.codes import ALPHABET, CODE_LENGTH
from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupon_issue, coupon_template_save
from members.models import Member, TimelineEvent
from members.services import member_merge
from points.services.growth import member_tier_override
from points.services.tiers import tier_program_save
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import (
    FROM_PAST,
    coupon_state,
    days,
    fresh,
    issue,
    issued_count,
    template_create,
)


@pytest.fixture
def issued_signals():
    sent = []

    def receiver(sender, tenant_id, coupon_ids, **kwargs):
        sent.append((tenant_id, coupon_ids))

    signals.coupon_issued.connect(receiver)
    yield sent
    signals.coupon_issued.disconnect(receiver)


def test_a_coupon_has_a_fresh_code_and_is_valid_for_the_template_s_days(
        tenant, actor, member, issued_signals, django_capture_on_commit_callbacks):
    template = template_create(actor)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        coupon = issue(actor, template, member, key="manual:1")
    assert issued_signals == []  # not before the issue committed
    for callback in callbacks:
        callback()

    assert len(coupon.code) == CODE_LENGTH
    assert set(coupon.code) <= set(ALPHABET)
    assert (coupon.status, coupon.source, coupon.idempotency_key, coupon.member_id,
            coupon.operator) == ("issued", "manual", "manual:1", member.pk, "system")
    assert coupon.valid_from == coupon.issued_at
    assert coupon.valid_until == coupon.issued_at + timedelta(days=30)
    assert issued_count(template) == 1
    assert issued_signals == [(tenant.pk, [coupon.pk])]
    with tenant_scope(tenant):
        event = TimelineEvent.objects.get(member=member, kind="coupon.issued")
    assert event.data == {"coupon": coupon.pk, "template": "c100-20", "name": "满 100 减 20",
                          "source": "manual"}


def test_a_fixed_window_comes_from_the_template(tenant, actor, member, other_member):
    until = days(10)
    from_issue = template_create(actor, code="a", validity="absolute", valid_days=0,
                                 valid_until=until)
    from_date = template_create(actor, code="b", validity="absolute", valid_days=0,
                                valid_from=FROM_PAST, valid_until=until)

    first, second = issue(actor, from_issue, member), issue(actor, from_date, member)

    assert (first.valid_from, first.valid_until) == (first.issued_at, until)
    assert (second.valid_from, second.valid_until) == (FROM_PAST, until)


def test_the_same_key_answers_with_the_first_coupon(tenant, actor, member, other_member):
    template = template_create(actor, per_member_limit=0)
    first = issue(actor, template, member, key="mall:7")

    again = issue(actor, template, member, key="mall:7")
    with pytest.raises(ApplicationError) as other_member_refused:
        issue(actor, template, other_member, key="mall:7")

    assert (again.pk, again.code) == (first.pk, first.code)
    assert (other_member_refused.value.status_code, other_member_refused.value.code) == (
        422, "idempotency_key_reused")
    assert issued_count(template) == 1
    with tenant_scope(tenant):
        assert Coupon.objects.count() == 1


def _levels(actor, tenant, member):
    with tenant_scope(tenant):
        program = tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "silver", "name": "银卡", "threshold": 0},
            {"code": "gold", "name": "金卡", "threshold": 1000}])
        member_tier_override(actor=actor, program=program, member=member,
                             level=program.levels.get(code="gold"), reason="测试")


def test_a_tier_restricted_template_is_for_the_levels_it_names(tenant, actor, member,
                                                               other_member):
    _levels(actor, tenant, member)
    template = template_create(actor, allowed_tiers=["gold"])
    before = coupon_state(tenant)

    with pytest.raises(ApplicationError) as refused:
        issue(actor, template, other_member)
    assert (refused.value.status_code, refused.value.code) == (409, "tier_not_allowed")
    assert coupon_state(tenant) == before

    assert issue(actor, template, member).member_id == member.pk


@pytest.mark.parametrize(("fields", "setup", "code"), [
    ({"is_active": False}, 0, "template_inactive"),
    ({"validity": "absolute", "valid_days": 0, "valid_from": FROM_PAST,
      "valid_until": FROM_PAST + timedelta(days=1)}, 0, "template_expired"),
    ({"per_member_limit": 2}, 2, "limit_reached"),
    ({"total_stock": 2}, 2, "out_of_stock"),
])
def test_a_refused_issue_is_a_409_and_changes_nothing(tenant, actor, member, fields, setup,
                                                      code):
    template = template_create(actor, per_member_limit=0)
    for _n in range(setup):
        issue(actor, template, member)
    with tenant_scope(tenant):
        template = coupon_template_save(actor=actor, template=template, changes=fields)
    before = coupon_state(tenant)

    with pytest.raises(ApplicationError) as refused:
        issue(actor, template, member)

    assert (refused.value.status_code, refused.value.code) == (409, code)
    assert coupon_state(tenant) == before


def test_a_cancelled_coupon_no_longer_counts_towards_the_limit(tenant, actor, member):
    from campaigns.coupons.services import coupon_cancel

    template = template_create(actor)
    first = issue(actor, template, member)
    with tenant_scope(tenant):
        coupon_cancel(actor=actor, coupon=first, reason="发错了")

    second = issue(actor, template, member)

    assert (fresh(first).status, second.status, issued_count(template)) == (
        "cancelled", "issued", 2)


def test_a_colliding_code_is_drawn_again(tenant, actor, member, other_member, monkeypatch):
    template = template_create(actor, per_member_limit=0)
    taken = issue(actor, template, member).code
    draws = iter([[taken], ["FRESHCODE234"]])
    monkeypatch.setattr(codes, "codes_generate", lambda count: next(draws))
    monkeypatch.setattr("campaigns.coupons.services.issue.codes_generate",
                        lambda count: next(draws))

    coupon = issue(actor, template, other_member)

    assert (coupon.code, coupon.member_id, issued_count(template)) == (
        "FRESHCODE234", other_member.pk, 2)


def test_a_merged_member_s_coupons_go_to_the_survivor(tenant, actor, member, other_member):
    template = template_create(actor, per_member_limit=0)
    theirs = issue(actor, template, other_member)
    with tenant_scope(tenant):
        record = member_merge(actor=actor, survivor=member, merged=other_member)
        merged = Member.objects.get(pk=other_member.pk)

    later = issue(actor, template, merged)  # the merged member now means the survivor

    assert (fresh(theirs).member_id, later.member_id) == (member.pk, member.pk)
    assert record.moved["coupons"] == 1


def test_a_coupon_needs_a_key_and_a_known_source(tenant, actor, member):
    template = template_create(actor)
    before = coupon_state(tenant)

    with tenant_scope(tenant):
        for bad in ({"key": ""}, {"key": "k" * 256}, {"source": "lottery"}):
            values = {"key": "ok", "source": "manual", **bad}
            with pytest.raises(ApplicationError) as refused:
                coupon_issue(actor=actor, template=template, member=member, **values)
            assert (refused.value.status_code, refused.value.code) == (400, "validation_error")
    assert coupon_state(tenant) == before
