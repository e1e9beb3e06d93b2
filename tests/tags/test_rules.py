"""Rule tags: conditions over attributes and behaviour, previewed before saving, evaluated on
a schedule and as orders and profiles change; members enter and leave as they match."""

import datetime as dt

import pytest
from django.utils import timezone

from members.models import TimelineEvent
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag
from tags.tasks import tag_rules_evaluate_all_task, tag_rules_evaluate_task
from tests.tags.conftest import MEMBERS, TAGS, body, make_tag, patch, post

PREVIEW = f"{TAGS}rule-preview/"
SKINCARE_SHANGHAI = {"all": [{"orders": {"days": 30, "category": "护肤"}},
                             {"field": "city", "op": "eq", "value": "上海"}]}
PHONES = {"wang": "13800138000", "zhao": "13800138001", "li": "13900139000",
          "han": "13700137000"}


def order(who: str, order_no: str, *, category: str = "护肤", sku: str = "SK-30",
          amount_fen: int = 29900, days_ago: int = 1) -> dict:
    paid_at = timezone.now() - dt.timedelta(days=days_ago)
    return {"order_no": order_no, "channel": "tmall", "paid_at": paid_at.isoformat(),
            "amount_fen": amount_fen,
            "buyer": {"identities": [{"kind": "phone", "value": PHONES[who]}]},
            "lines": [{"sku": sku, "product": "精华液", "category": category, "quantity": 1,
                       "price_fen": amount_fen}]}


def pay(client, data: dict) -> dict:
    return body(post(client, "/api/v1/orders/", data), 201)


def members_of(tenant, tag: dict) -> list[tuple[int, str, str]]:
    with tenant_scope(tenant):
        return list(MemberTag.objects.filter(tag_id=tag["id"]).order_by("member_id")
                    .values_list("member_id", "source", "tagged_by"))


def preview(client, rule) -> int:
    return body(post(client, PREVIEW, {"rule": rule}))["count"]


@pytest.fixture
def rule_tag(api_client, group) -> dict:
    return make_tag(api_client, group["id"], "上海护肤客", kind="rule", rule=SKINCARE_SHANGHAI)


def test_rule_tag_is_saved_with_its_rule(rule_tag, group):
    assert {k: rule_tag[k] for k in ("group", "name", "kind", "rule", "member_count")} == {
        "group": group["id"], "name": "上海护肤客", "kind": "rule", "rule": SKINCARE_SHANGHAI,
        "member_count": 0}


def test_paid_order_adds_the_member_and_a_full_refund_removes_them(
        api_client, tenant, rule_tag, people, django_capture_on_commit_callbacks):
    wang = people["wang"]
    assert preview(api_client, SKINCARE_SHANGHAI) == 0

    with django_capture_on_commit_callbacks(execute=True):
        paid = pay(api_client, order("wang", "T1"))
    assert members_of(tenant, rule_tag) == [(wang["id"], "rule", "rule")]
    assert body(api_client.get(f"{TAGS}{rule_tag['id']}/"))["member_count"] == 1
    tags = body(api_client.get(f"{MEMBERS}{wang['id']}/tags/"))
    assert [t["tag"] for t in tags if t["source"] != "system"] == [rule_tag["id"]]
    with tenant_scope(tenant):
        event = TimelineEvent.objects.get(kind="tag.added", data__source="rule")
    assert (event.member_id, event.actor, event.data) == (
        wang["id"], "rule", {"tag_id": rule_tag["id"], "tag": "上海护肤客", "source": "rule"})

    # Not matching: the wrong city, the wrong category, too long ago.
    with django_capture_on_commit_callbacks(execute=True):
        pay(api_client, order("li", "T2"))
        pay(api_client, order("zhao", "T3", category="彩妆"))
        pay(api_client, order("zhao", "T4", days_ago=31))
    assert members_of(tenant, rule_tag) == [(wang["id"], "rule", "rule")]
    assert preview(api_client, SKINCARE_SHANGHAI) == 1

    refund = post(api_client, f"/api/v1/orders/{paid['id']}/refunds/",
                  {"refund_no": "R1", "amount_fen": 29900})
    body(refund, 201)
    assert preview(api_client, SKINCARE_SHANGHAI) == 0
    assert tag_rules_evaluate_task(tenant.pk) == 1
    assert members_of(tenant, rule_tag) == []
    assert body(api_client.get(f"{TAGS}{rule_tag['id']}/"))["member_count"] == 0
    with tenant_scope(tenant):
        removed = TimelineEvent.objects.get(kind="tag.removed")
        assert Tag.objects.get(pk=rule_tag["id"]).rule_evaluated_at is not None
    assert (removed.member_id, removed.actor, removed.data["source"]) == (wang["id"], "rule",
                                                                          "rule")


def test_refund_and_profile_changes_are_evaluated_as_they_arrive(
        api_client, tenant, rule_tag, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        paid = pay(api_client, order("wang", "T1"))
        pay(api_client, order("han", "T2"))
    assert [m for m, *_ in members_of(tenant, rule_tag)] == [people["wang"]["id"]]

    with django_capture_on_commit_callbacks(execute=True):
        body(patch(api_client, f"{MEMBERS}{people['han']['id']}/", {"city": "上海"}))
    assert [m for m, *_ in members_of(tenant, rule_tag)] == sorted(
        [people["wang"]["id"], people["han"]["id"]])

    with django_capture_on_commit_callbacks(execute=True):
        body(post(api_client, f"/api/v1/orders/{paid['id']}/refunds/",
                  {"refund_no": "R1", "amount_fen": 29900}), 201)
    assert [m for m, *_ in members_of(tenant, rule_tag)] == [people["han"]["id"]]
    assert body(api_client.get(f"{TAGS}{rule_tag['id']}/"))["member_count"] == 1


def test_a_partial_refund_keeps_the_member(api_client, tenant, rule_tag, people,
                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        paid = pay(api_client, order("wang", "T1"))
        body(post(api_client, f"/api/v1/orders/{paid['id']}/refunds/",
                  {"refund_no": "R1", "amount_fen": 100}), 201)
    assert [m for m, *_ in members_of(tenant, rule_tag)] == [people["wang"]["id"]]


def test_scheduled_evaluation_brings_every_tenant_in_line(
        api_client, other_api_client, tenant, other_tenant, group, people):
    pay(api_client, order("wang", "T1"))
    pay(api_client, order("zhao", "T2", amount_fen=500))
    big = make_tag(api_client, group["id"], "大单", kind="rule",
                   rule={"orders": {"days": 7, "min_amount_fen": 10000}})
    assert members_of(tenant, big) == []

    assert tag_rules_evaluate_all_task() == 2
    assert members_of(tenant, big) == [(people["wang"]["id"], "rule", "rule")]
    assert tag_rules_evaluate_all_task() == 2
    assert len(members_of(tenant, big)) == 1
    with tenant_scope(tenant):
        assert TimelineEvent.objects.filter(kind="tag.added").count() == 1
    with tenant_scope(other_tenant):
        assert not MemberTag.objects.exists()


def test_preview_over_attributes_and_behaviour(api_client, tenant, tag, people, guide):
    body(post(api_client, f"{MEMBERS}{people['li']['id']}/tags/", {"tag_id": tag["id"]}), 201)
    pay(api_client, order("wang", "T1", sku="SK-30", amount_fen=29900, days_ago=2))
    pay(api_client, order("wang", "T2", sku="LIP-1", category="彩妆", amount_fen=9900,
                          days_ago=40))
    pay(api_client, order("li", "T3", sku="SK-50", amount_fen=59900, days_ago=10))
    pay(api_client, order("li", "T4", sku="SK-50", amount_fen=59900, days_ago=20))
    cases = [
        ({"orders": {"days": 30}}, 2),
        ({"orders": {"days": 30, "sku": "SK-50"}}, 1),
        ({"orders": {"days": 30, "min_count": 2}}, 1),
        ({"orders": {"days": 60, "category": "彩妆"}}, 1),
        ({"orders": {"days": 30, "min_amount_fen": 50000}}, 1),
        ({"not": {"orders": {"days": 365}}}, 2),
        ({"field": "total_spent_fen", "op": "gte", "value": 100000}, 1),
        ({"field": "order_count", "op": "eq", "value": 2}, 2),
        ({"field": "last_order_days", "op": "lte", "value": 5}, 1),
        ({"field": "birth_month", "op": "eq", "value": 5}, 2),
        ({"field": "province", "op": "eq", "value": "浙江"}, 1),
        ({"field": "source_channel", "op": "eq", "value": "api"}, 4),
        ({"store": "BJ001"}, 1),
        ({"guide": guide.pk}, 2),
        ({"identity": "phone"}, 4),
        ({"identity": "wechat_openid"}, 0),
        ({"all": [{"tag": tag["id"]}, {"orders": {"days": 30, "sku": "SK-50"}}]}, 1),
    ]
    for rule, expected in cases:
        assert preview(api_client, rule) == expected, rule


@pytest.mark.parametrize(("rule", "path"), [
    ({"all": [{"orders": {"days": 0}}]}, "$.all[0].orders.days"),
    ({"all": [{"orders": {"days": "30"}}]}, "$.all[0].orders.days"),
    ({"all": [{"orders": {"days": 4000}}]}, "$.all[0].orders.days"),
    ({"orders": {"days": 30, "min_count": 0}}, "$.orders.min_count"),
    ({"orders": {"days": 30, "min_amount_fen": -1}}, "$.orders.min_amount_fen"),
    ({"orders": {"days": 30, "category": 3}}, "$.orders"),
    ({"orders": {"days": 30, "brand": "x"}}, "$.orders"),
    ({"orders": [30]}, "$.orders"),
    ({"orders": {"days": 30}, "city": "上海"}, "$"),
    ({"identity": "qq"}, "$.identity"),
    ({"field": "city", "op": "between", "value": ["a", "b"]}, "$.op"),
    ({"any": []}, "$.any"),
])
def test_bad_rules_are_refused_naming_the_clause(api_client, tenant, group, rule, path):
    for response in (
        post(api_client, TAGS, {"group": group["id"], "name": "坏规则", "kind": "rule",
                                "rule": rule}),
        post(api_client, PREVIEW, {"rule": rule}),
    ):
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "invalid_expression"
        assert response.json()["message"].startswith(f"{path}: "), response.json()["message"]
    with tenant_scope(tenant):
        assert not Tag.objects.exists()


def test_rule_belongs_to_rule_tags_only(api_client, tenant, group, rule_tag):
    missing = post(api_client, TAGS, {"group": group["id"], "name": "无规则", "kind": "rule"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "rule_required"
    stray = post(api_client, TAGS, {"group": group["id"], "name": "手工", "rule": {
        "field": "city", "op": "eq", "value": "上海"}})
    assert stray.status_code == 400
    assert stray.json()["code"] == "rule_not_allowed"
    broken = patch(api_client, f"{TAGS}{rule_tag['id']}/", {"rule": {"orders": {"days": 0}}})
    assert broken.status_code == 400
    assert broken.json()["code"] == "invalid_expression"
    with tenant_scope(tenant):
        assert list(Tag.objects.values_list("name", "rule")) == [("上海护肤客",
                                                                  SKINCARE_SHANGHAI)]


def test_a_rule_broken_by_a_deleted_tag_does_not_stop_the_others(api_client, tenant, group,
                                                                 tag, people):
    make_tag(api_client, group["id"], "依赖", kind="rule", rule={"tag": tag["id"]})
    shanghai = make_tag(api_client, group["id"], "上海", kind="rule",
                        rule={"field": "city", "op": "eq", "value": "上海"})
    assert body(api_client.delete(f"{TAGS}{tag['id']}/?confirm=true"))["rules"] == ["依赖"]

    assert tag_rules_evaluate_task(tenant.pk) == 2
    assert [m for m, *_ in members_of(tenant, shanghai)] == sorted(
        [people["wang"]["id"], people["zhao"]["id"]])


def test_other_tenant_cannot_preview_with_our_tags(api_client, other_api_client, tag):
    response = post(other_api_client, PREVIEW, {"rule": {"tag": tag["id"]}})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_expression"
    assert response.json()["message"].startswith("$.tag: ")


def test_saving_a_rule_tag_evaluates_it_at_once(api_client, tenant, group, people,
                                                django_capture_on_commit_callbacks):
    rule = {"field": "city", "op": "eq", "value": "上海"}
    with django_capture_on_commit_callbacks(execute=True):
        tag = make_tag(api_client, group["id"], "上海客", kind="rule", rule=rule)
    assert [row[0] for row in members_of(tenant, tag)] == sorted(
        [people["wang"]["id"], people["zhao"]["id"]])
    with django_capture_on_commit_callbacks(execute=True):
        patch(api_client, f"{TAGS}{tag['id']}/", {"rule": {
            "field": "city", "op": "eq", "value": "北京"}})
    assert [row[0] for row in members_of(tenant, tag)] == [people["han"]["id"]]
