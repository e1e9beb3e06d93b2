"""Automation rules: each trigger fires its rules through the service that causes it (a
follow callback, a tier upgrade, a birthday, a first order, becoming dormant, points about
to expire, joining a customer group), once per member and occurrence; a delay leaves the
firing to the dispatcher; the condition, consent and the frequency cap filter; the action
is applied; inactive rules do nothing; the API refuses bad rules."""

import datetime as dt
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupon_template_save
from campaigns.models import AutomationFiring, AutomationRule
from campaigns.rfm.services.lifecycle import lifecycle_pass
from campaigns.services.automation import automation_daily, automation_rule_save
from campaigns.services.policy import policy_update
from campaigns.tasks import campaigns_dispatch_task
from integrations.services.connections import wecom_corp_connect
from integrations.services.wecom import group_write
from members.models import Member
from members.services import order_ingest
from points.models import PointsEntry, TierProgram
from points.services import Ref, points_earn
from points.services.growth import growth_grant
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag, TagGroup
from tests.campaigns.test_campaigns import make as campaign_make
from tests.campaigns.test_campaigns import people, run_now
from tests.integrations.conftest import deliver, oa_app, sandbox, sandbox_options  # noqa: F401
from tests.points.test_tiers import create_program

AUTOMATIONS = "/api/v1/automations/"


@pytest.fixture
def actor(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def rule(actor, trigger: str, *, action: str = "points", params=None, **changes):
    with tenant_scope(actor.tenant):
        return automation_rule_save(actor=actor, changes={
            "name": f"{trigger} 自动化", "trigger": trigger, "action": action,
            "params": params or {"points": 50, "reason": "自动化赠送"}, **changes})


def rewarded(tenant, rule_obj) -> list[int]:
    """Members who got the rule's points, once per ledger row."""
    with tenant_scope(tenant):
        return sorted(PointsEntry.objects.filter(ref_type="automation", ref_id=str(rule_obj.pk))
                      .values_list("member_id", flat=True))


def firings(tenant) -> list[tuple[int, str, str]]:
    with tenant_scope(tenant):
        return list(AutomationFiring.objects.order_by("pk").values_list(
            "member_id", "occurrence", "status"))


def buy(actor, member: Member, order_no: str, amount_fen: int = 20_000):
    with tenant_scope(actor.tenant):
        return order_ingest(actor=actor, data={
            "order_no": order_no, "channel": "pos", "paid_at": timezone.now(),
            "amount_fen": amount_fen,
            "buyer": {"identities": [{"kind": "external", "app_id": "crm",
                                      "value": member.identities.get().value}]},
            "lines": [{"sku": "S", "product": "P", "quantity": 1, "price_fen": amount_fen}]})


def test_a_first_order_fires_once_and_a_second_order_does_not(
        actor, tenant, django_capture_on_commit_callbacks):
    first_purchase = rule(actor, "first_purchase")
    (member,) = people(actor, 1)
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, member, "A1")
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, member, "A2")
    assert rewarded(tenant, first_purchase) == [member.pk]
    assert firings(tenant) == [(member.pk, "first_purchase", "done")]


def test_a_tier_upgrade_through_growth_fires(actor, tenant, api_client,
                                             django_capture_on_commit_callbacks):
    program_id = create_program(api_client)["id"]
    tier_up = rule(actor, "tier_up")
    (member,) = people(actor, 1)
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        program = TierProgram.objects.get(pk=program_id)
        growth_grant(actor=actor, program=program, member=member, points=1500,
                     source="campaign", idempotency_key="g1")
        growth_grant(actor=actor, program=program, member=member, points=1500,
                     source="campaign", idempotency_key="g1")  # the same grant again
    assert rewarded(tenant, tier_up) == [member.pk]
    ((_member, occurrence, status),) = firings(tenant)
    assert (occurrence.split(":")[:2], status) == (["tier", str(program_id)], "done")


def test_a_follow_callback_fires_once_even_when_delivered_twice(sandbox, oa_app, actor,  # noqa: F811
                                                                tenant, deliver):  # noqa: F811
    followed = rule(actor, "followed")
    result = sandbox.simulate_mp("subscribe")
    deliver()
    sandbox.simulate_mp("subscribe", openid=result["openid"])  # followed again the same day
    deliver()
    with tenant_scope(tenant):
        member = Member.objects.get(identities__kind="wechat_openid",
                                    identities__value=result["openid"])
    assert rewarded(tenant, followed) == [member.pk]


def test_joining_a_customer_group_fires_for_the_new_members(actor, tenant,
                                                            django_capture_on_commit_callbacks):
    joined = rule(actor, "joined_group")
    detail = {"chat_id": "wrchat1", "name": "VIP 群", "owner": "",
              "member_list": [{"userid": "wmCustomer1", "type": 2, "join_time": 1764547200}]}
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        corp = wecom_corp_connect(actor=actor, corpid="wwbench", secret="s", name="企业",
                                  token="tok123", aes_key="a" * 43, agent_id="1", check=False)
        group_write(corp=corp, detail=detail, announce=True)
        group_write(corp=corp, detail=detail, announce=True)  # the same callback twice
    with tenant_scope(tenant):
        member = Member.objects.get(identities__kind="wecom_external_userid")
    assert rewarded(tenant, joined) == [member.pk]
    assert firings(tenant) == [(member.pk, "group:wrchat1", "done")]


def test_becoming_dormant_fires(actor, tenant, django_capture_on_commit_callbacks):
    dormant = rule(actor, "dormant")
    (member,) = people(actor, 1)
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, member, "A1")
    later = timezone.now() + timedelta(days=100)
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        lifecycle_pass(now=timezone.now())  # the first pass sets stages and announces none
        lifecycle_pass(now=later)
        lifecycle_pass(now=later)
    assert rewarded(tenant, dormant) == [member.pk]
    assert [status for _m, _o, status in firings(tenant)] == ["done"]


def test_a_birthday_fires_each_year_once(actor, tenant, django_capture_on_commit_callbacks):
    birthday = rule(actor, "birthday", days=3)
    born, other = people(actor, 2)
    with tenant_scope(tenant):
        Member.objects.filter(pk=born.pk).update(birthday=dt.date(1990, 12, 8))
        Member.objects.filter(pk=other.pk).update(birthday=dt.date(1990, 12, 9))
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        automation_daily(today=dt.date(2026, 12, 5))
        automation_daily(today=dt.date(2026, 12, 5))  # the daily job ran twice
    assert rewarded(tenant, birthday) == [born.pk]
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        automation_daily(today=dt.date(2027, 12, 5))
    assert rewarded(tenant, birthday) == [born.pk, born.pk]
    assert [o for _m, o, _s in firings(tenant)] == ["birthday:2026", "birthday:2027"]


def test_points_expiring_soon_fire(actor, tenant, django_capture_on_commit_callbacks):
    expiring = rule(actor, "points_expiring", days=7, action="tag",
                    params={"tag": tag_make(tenant).pk})
    soon, later = people(actor, 2)
    with tenant_scope(tenant):
        points_earn(actor=actor, member=soon, points=100, reason="购物", ref=Ref("t", "1"),
                    expires_at=timezone.now() + timedelta(days=5))
        points_earn(actor=actor, member=later, points=100, reason="购物", ref=Ref("t", "2"),
                    expires_at=timezone.now() + timedelta(days=30))
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        automation_daily()
        automation_daily()
    with tenant_scope(tenant):
        assert list(MemberTag.objects.filter(tag__name="积分将过期").values_list(
            "member_id", flat=True)) == [soon.pk]
    assert [(m, s) for m, _o, s in firings(tenant)] == [(soon.pk, "done")]
    assert expiring.is_active


def tag_make(tenant) -> Tag:
    with tenant_scope(tenant):
        return Tag.objects.create(group=TagGroup.objects.create(name="提醒"), name="积分将过期")


def test_a_delay_leaves_the_firing_to_the_dispatcher(actor, tenant,
                                                     django_capture_on_commit_callbacks):
    welcome = rule(actor, "first_purchase", delay_minutes=60)
    (member,) = people(actor, 1)
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, member, "A1")
    campaigns_dispatch_task(tenant.pk)
    assert rewarded(tenant, welcome) == []
    assert firings(tenant) == [(member.pk, "first_purchase", "pending")]
    with tenant_scope(tenant):
        AutomationFiring.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    campaigns_dispatch_task(tenant.pk)  # what the beat runs every minute
    assert rewarded(tenant, welcome) == [member.pk]


def test_the_condition_filters_and_a_coupon_is_issued(actor, tenant,
                                                      django_capture_on_commit_callbacks):
    with tenant_scope(tenant):
        coupon_template_save(actor=actor, changes={
            "code": "welcome", "name": "首单礼", "kind": "fixed", "amount_fen": 1000,
            "threshold_fen": 0, "validity": "relative", "valid_days": 30,
            "total_stock": 100, "per_member_limit": 1})
    rule(actor, "first_purchase", action="coupon", params={"template": "welcome"},
         condition={"field": "city", "op": "eq", "value": "上海"})
    (shanghai,) = people(actor, 1)
    (beijing,) = people(actor, 1, city="北京")
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, shanghai, "A1")
        buy(actor, beijing, "B1")
    with tenant_scope(tenant):
        assert list(Coupon.objects.values_list("member_id", "template__code", "source")) == [
            (shanghai.pk, "welcome", "automation")]
    assert sorted(firings(tenant)) == sorted([(shanghai.pk, "first_purchase", "done"),
                                              (beijing.pk, "first_purchase", "skipped")])


def test_consent_and_the_frequency_cap_when_the_rule_asks(actor, tenant,
                                                          django_capture_on_commit_callbacks):
    careful = rule(actor, "first_purchase", respect_frequency_cap=True, require_consent=True)
    careless = rule(actor, "first_purchase", params={"points": 7})
    (consenting,) = people(actor, 1)
    (refusing,) = people(actor, 1, consent=False)
    with tenant_scope(tenant):
        policy_update(actor=actor, changes={"max_touches": 1, "period_days": 7})
    run_now(actor, campaign_make(actor))  # reaches the consenting member: at the cap now
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, consenting, "A1")
        buy(actor, refusing, "B1")
    assert rewarded(tenant, careful) == []
    assert rewarded(tenant, careless) == sorted([consenting.pk, refusing.pk])
    with tenant_scope(tenant):
        why = dict(AutomationFiring.objects.filter(rule=careful).values_list(
            "member_id", "result__why"))
    assert why == {consenting.pk: "capped", refusing.pk: "no_consent"}


def test_an_inactive_rule_does_nothing(actor, tenant, django_capture_on_commit_callbacks):
    paused = rule(actor, "first_purchase", is_active=False)
    (member,) = people(actor, 1)
    with django_capture_on_commit_callbacks(execute=True):
        buy(actor, member, "A1")
    assert rewarded(tenant, paused) == []
    assert firings(tenant) == []


def test_the_api_creates_rules_and_refuses_bad_ones(api_client, other_api_client, tenant):
    created = api_client.post(AUTOMATIONS, {
        "name": "生日礼", "trigger": "birthday", "days": 7, "action": "points",
        "params": {"points": 100}, "require_consent": True}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["trigger"], body["days"], body["params"]["points"], body["require_consent"],
            body["fired"]) == ("birthday", 7, 100, True, {})
    cases = [
        ({"name": "x", "trigger": "birthday", "days": 61, "action": "points",
          "params": {"points": 1}}, "validation_error"),
        ({"name": "x", "trigger": "followed", "action": "points", "params": {"points": 0}},
         "invalid_action"),
        ({"name": "x", "trigger": "followed", "action": "coupon",
          "params": {"template": "nope"}}, "invalid_action"),
        ({"name": "x", "trigger": "followed", "action": "points", "params": {"points": 1},
          "condition": {"field": "nope", "op": "eq", "value": 1}}, "invalid_expression"),
        ({"name": "x", "trigger": "whenever", "action": "points", "params": {"points": 1}},
         "validation_error"),
    ]
    for payload, code in cases:
        response = api_client.post(AUTOMATIONS, payload, format="json")
        assert (response.status_code, response.json()["code"]) == (400, code), payload
    with tenant_scope(tenant):
        assert AutomationRule.objects.count() == 1
    rule_url = f"{AUTOMATIONS}{body['id']}/"
    assert other_api_client.get(rule_url).status_code == 404
    assert other_api_client.patch(rule_url, {"is_active": False},
                                  format="json").status_code == 404
    assert api_client.patch(rule_url, {"is_active": False}, format="json").json()[
        "is_active"] is False
