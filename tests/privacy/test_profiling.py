"""Members who withdrew profiling consent are left out of rule tags, RFM and lifecycle, and
people-goods matching, and lose what profiling had made of them at once."""

from campaigns.rfm.models import MemberLifecycle, MemberRfm
from campaigns.rfm.services.runs import rfm_run_now
from members.services.consent import consent_record
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Product, Tag, TagGroup
from tags.services.products import (
    product_audience_scores,
    product_recommend,
    product_sync_from_orders,
    product_tag_add,
)
from tags.services.rules import tag_rule_evaluate
from tests.rfm.conftest import NOW


def withdraw(actor, member) -> None:
    with tenant_scope(actor.tenant):
        consent_record(actor=actor, member=member, purpose="profiling", granted=False)


def rule_tag(actor) -> Tag:
    with tenant_scope(actor.tenant):
        group = TagGroup.objects.create(tenant=actor.tenant, name="规则")
        tag = Tag.objects.create(tenant=actor.tenant, group=group, name="上海会员",
                                 kind=Tag.Kind.RULE,
                                 rule={"field": "city", "op": "eq", "value": "上海"})
        tag_rule_evaluate(tag=tag)
        return tag


def tagged(actor, tag) -> set[int]:
    with tenant_scope(actor.tenant):
        return set(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True))


def test_rule_tags_leave_out_members_who_withdrew_profiling(actor, wang, li):
    tag = rule_tag(actor)
    assert tagged(actor, tag) == {wang.pk, li.pk}
    withdraw(actor, wang)
    assert tagged(actor, tag) == {li.pk}
    with tenant_scope(actor.tenant):
        tag_rule_evaluate(tag=tag)
        assert Tag.objects.get(pk=tag.pk).member_count == 1
    assert tagged(actor, tag) == {li.pk}


def test_rfm_and_lifecycle_leave_out_members_who_withdrew_profiling(actor, wang, li):
    with tenant_scope(actor.tenant):
        rfm_run_now(actor=actor, now=NOW.replace(year=NOW.year + 1))
        scored = set(MemberRfm.objects.exclude(segment="").values_list("member_id", flat=True))
    assert scored == {wang.pk, li.pk}
    withdraw(actor, wang)
    with tenant_scope(actor.tenant):
        assert not MemberRfm.objects.filter(member=wang).exists()
        assert not MemberLifecycle.objects.filter(member=wang).exists()
        assert not MemberTag.objects.filter(
            member=wang, tag__external_source__in=("rfm", "lifecycle")).exists()
        rfm_run_now(actor=actor, now=NOW.replace(year=NOW.year + 1))
        assert not MemberRfm.objects.filter(member=wang).exclude(segment="").exists()
        assert MemberRfm.objects.filter(member=li).exclude(segment="").exists()
        assert not MemberLifecycle.objects.filter(member=wang).exists()


def test_people_goods_matching_leaves_out_members_who_withdrew_profiling(actor, wang, li):
    with tenant_scope(actor.tenant):
        group = TagGroup.objects.create(tenant=actor.tenant, name="功效")
        tag = Tag.objects.create(tenant=actor.tenant, group=group, name="保湿",
                                 target=Tag.Target.PRODUCT)
        product_sync_from_orders()
        product = Product.objects.get(sku="SK-1")
        product_tag_add(actor=actor, product=product, tag=tag)
        _weights, before = product_recommend(member=wang)
        audience_before = {no for no, _score in product_audience_scores(product=product,
                                                                          limit=10)[0]}
    assert [item.product.sku for item in before] == ["SK-1"]
    assert audience_before == {wang.member_no, li.member_no}
    withdraw(actor, wang)
    with tenant_scope(actor.tenant):
        wang.refresh_from_db()
        assert product_recommend(member=wang) == ({}, [])
        audience = {no for no, _score in product_audience_scores(product=product, limit=10)[0]}
    assert audience == {li.member_no}
