"""Tier programmes: levels and their tags, growth from orders and grants, upgrades at once,
downgrades only at reviews, protection, overrides, refunds, merges and benefits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import TimelineEvent
from members.services import member_merge
from points import signals
from points.models import GrowthEntry, MemberTier, PointsEntry, TierChange, TierLevel, TierProgram
from points.services.growth import tiers_review
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tags.audience.expressions import Parser
from tags.audience.index import audience_count
from tags.models import MemberTag
from tests.conftest import client_for
from tests.members.test_api_orders import order_payload, refunds_url
from tests.points.conftest import new_member

PROGRAMS = "/api/v1/tiers/programs/"
LEVELS = [
    {"code": "l1", "name": "初入酒场", "threshold": 0},
    {"code": "l2", "name": "酒场新秀", "threshold": 1000, "points_multiplier": "1.20"},
    {"code": "l3", "name": "酒客", "threshold": 5000, "points_multiplier": "1.50",
     "discount_percent": 95, "free_shipping": True},
    {"code": "l4", "name": "酒仙", "threshold": 20000, "points_multiplier": "2.00",
     "birthday_points": 500, "priority_service": True, "lottery_weight": 3},
    {"code": "l5", "name": "酒神", "threshold": 50000, "points_multiplier": "3.00"},
]


def create_program(client, **changes):
    body = {"name": "酒友会", "basis": "growth", "window_days": 365, "review_days": 365,
            "protection_days": 90, "max_downgrade_steps": 1, "growth_per_yuan": "1.00",
            "levels": LEVELS, **changes}
    response = client.post(PROGRAMS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def pay(client, capture, amount_fen, *, order_no, phone="13800138000", days_ago=0):
    paid_at = (timezone.now() - timedelta(days=days_ago)).isoformat()
    body = order_payload(order_no=order_no, amount_fen=amount_fen, paid_at=paid_at,
                         buyer={"identities": [{"kind": "phone", "value": phone}]},
                         lines=[{"sku": "SK-30", "product": "精华液", "quantity": 1,
                                 "price_fen": amount_fen}])
    with capture(execute=True):
        response = client.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def level_of(tenant, member_id, program_id=None):
    with tenant_scope(tenant):
        row = MemberTier.objects.filter(member_id=member_id).select_related("level")
        if program_id:
            row = row.filter(program_id=program_id)
        row = row.first()
        return row.level.code if row and row.level else None


def level_tags(tenant, member_id) -> list[str]:
    with tenant_scope(tenant):
        return sorted(MemberTag.objects.filter(member_id=member_id, tag__external_source="tier")
                      .values_list("tag__external_id", flat=True))


@pytest.fixture
def program(api_client, tenant):
    return create_program(api_client)


def test_a_programme_gets_ordered_levels_each_with_a_system_tag(program, tenant):
    assert [(lv["rank"], lv["code"], lv["name"], lv["threshold"]) for lv in program["levels"]] == [
        (1, "l1", "初入酒场", 0), (2, "l2", "酒场新秀", 1000), (3, "l3", "酒客", 5000),
        (4, "l4", "酒仙", 20000), (5, "l5", "酒神", 50000)]
    with tenant_scope(tenant):
        tags = {level.code: (level.tag.name, level.tag.kind, level.tag.group.name)
                for level in TierLevel.objects.select_related("tag__group")}
    assert tags["l3"] == ("酒客", "system", "会员等级")


def test_overlapping_thresholds_are_refused_and_nothing_is_written(api_client, tenant):
    levels = [dict(LEVELS[0]), dict(LEVELS[1]), {**LEVELS[2], "threshold": 1000}]
    response = api_client.post(PROGRAMS, {"name": "酒友会", "levels": levels}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "tier_thresholds_overlap"
    assert "酒客" in response.json()["message"]
    with tenant_scope(tenant):
        assert TierProgram.objects.count() == 0
        assert TierLevel.objects.count() == 0


def test_a_second_tenant_wide_programme_is_refused(api_client, program):
    response = api_client.post(PROGRAMS, {"name": "另一个", "levels": LEVELS}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "program_exists"


def test_orders_earn_growth_and_upgrade_at_once(program, tenant, store, api_client,
                                               django_capture_on_commit_callbacks):
    events = []
    signals.tier_changed.connect(lambda **kw: events.append(kw), weak=False,
                                 dispatch_uid="test-tier-events")
    try:
        order = pay(api_client, django_capture_on_commit_callbacks, 120000, order_no="A1")
    finally:
        signals.tier_changed.disconnect(dispatch_uid="test-tier-events")
    member_id = order["member"]
    assert level_of(tenant, member_id) == "l2"  # 1,200 yuan → 1,200 growth
    assert level_tags(tenant, member_id) == ["l2"]
    with tenant_scope(tenant):
        assert list(GrowthEntry.objects.values_list("points", "source", "ref_id")) == [
            (1200, "order", str(order["id"]))]
        assert list(TierChange.objects.order_by("id").values_list(
            "kind", "from_level__code", "to_level__code")) == [("upgrade", None, "l2")]
        timeline = TimelineEvent.objects.filter(member_id=member_id, kind="tier.changed").get()
        assert timeline.data["to"] == "酒场新秀"
    assert [(e["member_id"], e["change"]) for e in events] == [(member_id, "upgrade")]

    pay(api_client, django_capture_on_commit_callbacks, 400000, order_no="A2")
    assert level_of(tenant, member_id) == "l3"
    assert level_tags(tenant, member_id) == ["l3"]
    with tenant_scope(tenant):
        assert audience_count(Parser().parse({"tier": "l3"})) == 1
        assert audience_count(Parser().parse({"tier": {"min": "l2"}})) == 1
        assert audience_count(Parser().parse({"tier": "l2"})) == 0


def test_the_level_multiplies_order_points(program, tenant, store, api_client,
                                           django_capture_on_commit_callbacks):
    first = pay(api_client, django_capture_on_commit_callbacks, 600000, order_no="B1")
    assert level_of(tenant, first["member"]) == "l3"
    second = pay(api_client, django_capture_on_commit_callbacks, 19999, order_no="B2")
    with tenant_scope(tenant):
        points = dict(PointsEntry.objects.filter(ref_type="order").values_list("ref_id",
                                                                               "points"))
    # The first order was placed on level 1 (1×); the second at 酒客: 199.99 × 1.5 floored.
    assert points == {str(first["id"]): 6000, str(second["id"]): 299}


def test_downgrades_wait_for_the_review_and_the_protection_period(program, tenant, store,
                                                                 api_client,
                                                                 django_capture_on_commit_callbacks):
    order = pay(api_client, django_capture_on_commit_callbacks, 2500000, order_no="C1")
    member_id = order["member"]
    assert level_of(tenant, member_id) == "l4"
    with tenant_scope(tenant):
        tier_program = TierProgram.objects.get()
        # Inside the protection period nothing moves, even when the review is forced due.
        MemberTier.objects.update(next_review_at=timezone.now())
        assert tiers_review(program=tier_program, now=timezone.now() + timedelta(days=30)) == 0
        assert level_of(tenant, member_id) == "l4"
        # Two years on, the growth has left the 365-day window: down one level per review.
        later = timezone.now() + timedelta(days=730)
        assert tiers_review(program=tier_program, now=later) == 1
        assert level_of(tenant, member_id) == "l3"
        assert level_tags(tenant, member_id) == ["l3"]
        standing = MemberTier.objects.get()
        assert standing.next_review_at == later + timedelta(days=365)
        assert tiers_review(program=tier_program, now=later) == 0  # not due again
        assert list(TierChange.objects.order_by("id").values_list("kind", flat=True)) == [
            "upgrade", "downgrade"]


def test_a_manual_override_holds_until_it_ends(program, tenant, store, api_client,
                                               django_capture_on_commit_callbacks):
    member_id = pay(api_client, django_capture_on_commit_callbacks, 10000, order_no="D1")["member"]
    until = timezone.now() + timedelta(days=60)
    response = api_client.post(f"/api/v1/members/{member_id}/tier/override/",
                               {"level": "l5", "reason": "集团 VIP", "until": until.isoformat()},
                               format="json")
    assert response.status_code == 200, response.json()
    tier = response.json()["tiers"][0]
    assert (tier["level"]["code"], tier["is_override"], tier["override_reason"]) == (
        "l5", True, "集团 VIP")
    assert level_tags(tenant, member_id) == ["l5"]
    with tenant_scope(tenant):
        assert AuditEntry.objects.filter(action="tiers.override").count() == 1
        tier_program = TierProgram.objects.get()
        MemberTier.objects.update(next_review_at=timezone.now())
        assert tiers_review(program=tier_program, now=timezone.now() + timedelta(days=1)) == 0
        assert level_of(tenant, member_id) == "l5"
        # Once it ends, the member drops to what they qualify for (100 growth: level 1).
        assert tiers_review(program=tier_program, now=until + timedelta(days=1)) == 1
        assert level_of(tenant, member_id) == "l1"
        assert MemberTier.objects.get().is_override is False


def test_an_override_needs_a_reason_and_a_known_level(program, api_client, tenant, store,
                                                      django_capture_on_commit_callbacks):
    member_id = pay(api_client, django_capture_on_commit_callbacks, 10000, order_no="E1")["member"]
    url = f"/api/v1/members/{member_id}/tier/override/"
    response = api_client.post(url, {"level": "l5", "reason": " "}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "reason" in response.json()["errors"]
    response = api_client.post(url, {"level": "l9", "reason": "x"}, format="json")
    assert response.status_code == 404
    assert level_of(tenant, member_id) == "l1"


def test_refunds_take_growth_back_but_keep_the_level_until_review(
        program, tenant, store, api_client, django_capture_on_commit_callbacks):
    order = pay(api_client, django_capture_on_commit_callbacks, 600000, order_no="F1")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(refunds_url(order["id"]),
                                   {"refund_no": "R1", "amount_fen": 300000}, format="json")
    assert response.status_code == 201, response.json()
    with tenant_scope(tenant):
        assert sorted(GrowthEntry.objects.values_list("points", "source")) == [
            (-3000, "reverse"), (6000, "order")]
        assert MemberTier.objects.get().growth_total == 3000
    assert level_of(tenant, order["member"]) == "l3"  # 3,000 < 5,000, but no review yet


def test_growth_grants_are_idempotent(program, api_client, tenant):
    member = new_member(api_client_actor(tenant))
    body = {"member": member.pk, "points": 1500, "source": "campaign", "reason": "双十一"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "g-1"}
    first = api_client.post("/api/v1/tiers/growth/", body, format="json", **headers)
    assert first.status_code == 201, first.json()
    assert (first.json()["growth_total"], first.json()["level"]["code"]) == (1500, "l2")
    again = api_client.post("/api/v1/tiers/growth/", body, format="json", **headers)
    assert again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    other = api_client.post("/api/v1/tiers/growth/", {**body, "points": 9},
                            format="json", **headers)
    assert other.status_code == 422
    with tenant_scope(tenant):
        assert GrowthEntry.objects.count() == 1


def test_spend_programmes_rank_by_spend_in_the_window(api_client, tenant, store,
                                                     django_capture_on_commit_callbacks):
    create_program(api_client, basis="spend", window_days=180, levels=[
        {"code": "s1", "name": "普卡", "threshold": 0},
        {"code": "s2", "name": "金卡", "threshold": 300000}])
    old = pay(api_client, django_capture_on_commit_callbacks, 250000, order_no="G1",
              days_ago=200)
    assert level_of(tenant, old["member"]) == "s1"  # outside the 180-day window
    pay(api_client, django_capture_on_commit_callbacks, 300000, order_no="G2")
    assert level_of(tenant, old["member"]) == "s2"


def test_lowering_a_threshold_moves_qualifying_members_up(program, api_client, tenant, store,
                                                         django_capture_on_commit_callbacks):
    member_id = pay(api_client, django_capture_on_commit_callbacks, 300000,
                    order_no="H1")["member"]
    assert level_of(tenant, member_id) == "l2"
    levels = [dict(level) for level in LEVELS]
    levels[2]["threshold"] = 2500
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(f"{PROGRAMS}{program['id']}/", {"levels": levels},
                                    format="json")
    assert response.status_code == 200, response.json()
    assert level_of(tenant, member_id) == "l3"
    assert level_tags(tenant, member_id) == ["l3"]


def test_a_level_with_members_cannot_be_dropped(program, api_client, tenant, store,
                                               django_capture_on_commit_callbacks):
    pay(api_client, django_capture_on_commit_callbacks, 300000, order_no="I1")
    response = api_client.patch(f"{PROGRAMS}{program['id']}/",
                                {"levels": [LEVELS[0], LEVELS[2]]}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "level_in_use")
    with tenant_scope(tenant):
        assert TierLevel.objects.count() == 5


def test_benefits_follow_the_level(program, api_client, tenant, store,
                                   django_capture_on_commit_callbacks):
    member_id = pay(api_client, django_capture_on_commit_callbacks, 600000,
                    order_no="J1")["member"]
    response = api_client.get(f"/api/v1/members/{member_id}/benefits/")
    assert response.status_code == 200
    body = response.json()
    assert body["level"]["code"] == "l3"
    assert body["benefits"] == {
        "discount_percent": 95, "points_multiplier": "1.50", "birthday_points": 0,
        "birthday_coupon": "", "free_shipping": True, "exclusive_coupons": [],
        "lottery_weight": 1, "priority_service": False}
    standing = api_client.get(f"/api/v1/members/{member_id}/tier/").json()["tiers"][0]
    assert (standing["qualifying_value"], standing["next_level"]["code"],
            standing["to_next_level"]) == (6000, "l4", 14000)


def test_merging_keeps_the_higher_level_and_one_level_tag(program, api_client, tenant, store,
                                                         django_capture_on_commit_callbacks):
    low = pay(api_client, django_capture_on_commit_callbacks, 150000, order_no="K1",
              phone="13900000001")["member"]
    high = pay(api_client, django_capture_on_commit_callbacks, 700000, order_no="K2",
               phone="13900000002")["member"]
    actor = api_client_actor(tenant)
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        from members.models import Member

        member_merge(actor=actor, survivor=Member.objects.get(pk=low),
                     merged=Member.objects.get(pk=high))
        standing = MemberTier.objects.get(member_id=low)
        assert (standing.level.code, standing.growth_total) == ("l3", 8500)
        assert not MemberTier.objects.filter(member_id=high).exists()
        assert GrowthEntry.objects.filter(member_id=low).count() == 2
    assert level_tags(tenant, low) == ["l3"]
    assert level_tags(tenant, high) == []


def test_other_tenants_cannot_see_or_use_the_programme(program, other_api_client, other_tenant):
    assert other_api_client.get(f"{PROGRAMS}{program['id']}/").status_code == 404
    assert other_api_client.get(PROGRAMS).json() == []
    member = new_member(api_client_actor(other_tenant))
    response = other_api_client.post("/api/v1/tiers/growth/", {
        "member": member.pk, "points": 10, "source": "campaign", "reason": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "no_tier_program")


def test_programmes_need_the_manage_scope(tenant, program):
    reader = client_for(tenant, scopes=["points:read"])
    assert reader.get(PROGRAMS).status_code == 200
    assert reader.post(PROGRAMS, {"name": "x", "levels": LEVELS}, format="json").status_code \
        == 403


def api_client_actor(tenant):
    from scrm.access import ALL_SCOPES, Actor

    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
