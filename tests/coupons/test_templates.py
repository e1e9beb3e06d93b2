"""Coupon templates: each kind's rules, validity absolute or relative, restrictions; bad
templates are a 400 naming the field, and change nothing."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from campaigns.coupons.models import CouponTemplate
from campaigns.coupons.services import coupon_template_save
from points.services.tiers import tier_program_save
from scrm.api.errors import ApplicationError
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import coupon_state, issue, template_create

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNTIL = datetime(2030, 1, 1, tzinfo=SHANGHAI)
FROM = datetime(2029, 1, 1, tzinfo=SHANGHAI)


def test_a_fixed_template_keeps_its_rules_and_is_audited(tenant, actor, store):
    template = template_create(actor, stores=["SH001"], skus=["SK-30"], categories=["护肤"],
                               total_stock=500, per_member_limit=2)

    with tenant_scope(tenant):
        saved = CouponTemplate.objects.get(pk=template.pk)
        audit = AuditEntry.objects.get(action="coupons.template_create")
    assert (saved.code, saved.kind, saved.amount_fen, saved.threshold_fen, saved.validity,
            saved.valid_days, saved.total_stock, saved.issued_count, saved.stock_left,
            saved.per_member_limit, saved.stores, saved.skus, saved.categories,
            saved.is_active) == ("c100-20", "fixed", 2000, 10000, "relative", 30, 500, 0, 500,
                                 2, ["SH001"], ["SK-30"], ["护肤"], True)
    assert (audit.target_id, audit.data["after"]["code"]) == (template.pk, "c100-20")


def test_percentage_gift_and_absolute_templates_are_accepted(tenant, actor):
    percent = template_create(actor, code="p85", kind="percent", amount_fen=0, percent_off=15,
                              max_discount_fen=5000)
    gift = template_create(actor, code="gift", kind="gift", amount_fen=0, gift_name="小样",
                           validity="absolute", valid_days=0, valid_from=FROM, valid_until=UNTIL)

    assert (percent.percent_off, percent.max_discount_fen, percent.stock_left) == (15, 5000, None)
    assert (gift.gift_name, gift.valid_from, gift.valid_until) == ("小样", FROM, UNTIL)


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"amount_fen": 0}, "amount_fen", "满减券须设置减免金额。"),
    ({"kind": "percent", "amount_fen": 0, "percent_off": 0}, "percent_off",
     "折扣券须设置 1 到 99 之间的减免比例。"),
    ({"kind": "percent", "percent_off": 20}, "amount_fen", "只有满减券可以设置减免金额。"),
    ({"max_discount_fen": 100}, "max_discount_fen", "只有折扣券可以设置折扣和最高减免。"),
    ({"kind": "gift", "amount_fen": 0}, "gift_name", "赠品券须写明赠品。"),
    ({"validity": "absolute", "valid_days": 0}, "valid_until", "固定有效期须设置失效时间。"),
    ({"validity": "absolute", "valid_days": 0, "valid_from": UNTIL, "valid_until": FROM},
     "valid_until", "失效时间须晚于生效时间。"),
    ({"validity": "absolute", "valid_until": UNTIL}, "valid_days", "固定有效期不设有效天数。"),
    ({"valid_days": 0}, "valid_days", "领取后 N 天有效须设置有效天数。"),
    ({"valid_until": UNTIL}, "valid_until", "领取后 N 天有效不设固定日期。"),
    ({"stores": ["NOPE"]}, "stores", "未知门店：NOPE"),
    ({"allowed_tiers": ["gold"]}, "allowed_tiers", "未知等级：gold"),
    ({"skus": [""]}, "skus", "须为非空字符串的列表。"),
    ({"code": "满减"}, "code", "编码须为 1-64 位字母、数字、下划线或连字符。"),
])
def test_a_bad_template_is_a_400_naming_its_field(tenant, actor, fields, field, message):
    before = coupon_state(tenant)

    with pytest.raises(ApplicationError) as refused:
        template_create(actor, **fields)

    assert (refused.value.status_code, refused.value.code) == (400, "validation_error")
    assert refused.value.fields == {field: [message]}
    assert coupon_state(tenant) == before


def test_a_code_is_unique_per_tenant_and_cannot_change(tenant, other_tenant, actor):
    from scrm.access import ALL_SCOPES, Actor

    template = template_create(actor)
    template_create(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))  # theirs

    with pytest.raises(ApplicationError) as taken:
        template_create(actor, name="另一张")
    with tenant_scope(tenant), pytest.raises(ApplicationError) as renamed:
        coupon_template_save(actor=actor, template=template, changes={"code": "other"})

    assert (taken.value.status_code, taken.value.code) == (409, "template_code_taken")
    assert (renamed.value.status_code, renamed.value.code) == (400, "code_immutable")
    with tenant_scope(tenant):
        assert list(CouponTemplate.objects.values_list("code", "name")) == [
            ("c100-20", "满 100 减 20")]


def test_stock_cannot_drop_below_what_was_issued(tenant, actor, member, other_member):
    template = template_create(actor, total_stock=10, per_member_limit=0)
    for who in (member, other_member):
        issue(actor, template, who)

    with tenant_scope(tenant), pytest.raises(ApplicationError) as refused:
        coupon_template_save(actor=actor, template=template, changes={"total_stock": 1})
    with tenant_scope(tenant):
        lowered = coupon_template_save(actor=actor, template=template,
                                       changes={"total_stock": 2})

    assert refused.value.fields == {"total_stock": ["发行总量不能少于已发放的 2 张。"]}
    assert (lowered.total_stock, lowered.issued_count, lowered.stock_left) == (2, 2, 0)


def test_tier_codes_must_name_levels(tenant, actor):
    with tenant_scope(tenant):
        tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "silver", "name": "银卡", "threshold": 0},
            {"code": "gold", "name": "金卡", "threshold": 1000}])

    template = template_create(actor, allowed_tiers=["gold"])

    assert template.allowed_tiers == ["gold"]
