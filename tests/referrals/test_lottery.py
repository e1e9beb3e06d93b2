"""Lotteries: tier-weighted odds, per-member limits, points charged only for a draw that
happens, product codes used once, idempotent draws, a clear no_stock, tenant isolation."""

import random
from fractions import Fraction

import pytest
from django.utils import timezone

from campaigns.coupons.services import coupon_template_save
from campaigns.referrals.models import LotteryDraw, LotteryParticipant, LotteryPrize
from campaigns.referrals.selectors import lottery_odds
from campaigns.referrals.services import lottery_codes_add, lottery_draw, lottery_save
from points.models import PointsEntry
from points.services import points_earn
from points.services.growth import member_tier_override
from points.services.tiers import tier_program_save
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.referrals.conftest import coupon_template, coupons_of, days, person, points_of

LOTTERIES = "/api/v1/lotteries/"


class Fixed(random.Random):
    """Always lands at the same point of the wheel."""

    def __init__(self, point: float) -> None:
        super().__init__(0)
        self.point = point

    def random(self) -> float:
        return self.point


def lottery(actor, prizes=None, **changes):
    with tenant_scope(actor.tenant):
        return lottery_save(actor=actor, changes={"name": "周年庆抽奖", "starts_at": days(-1),
                                                  **changes},
                            prizes=prizes or [{"name": "积分大礼", "action": "points",
                                               "params": {"points": 100}, "stock": 5}])


def draw(actor, lot, member, **kwargs) -> str:
    """The draw's outcome, or the refusal's code."""
    try:
        with tenant_scope(actor.tenant):
            return lottery_draw(actor=actor, lottery=lot, member=member, **kwargs).draw.outcome
    except ApplicationError as exc:
        return exc.code


def funded(actor, points: int = 100, **profile):
    member = person(actor, **profile)
    with tenant_scope(actor.tenant):
        points_earn(actor=actor, member=member, points=points, reason="充值")
    return member


def gold_member(actor):
    member = person(actor)
    with tenant_scope(actor.tenant):
        program = tier_program_save(actor=actor, changes={"name": "会员俱乐部"}, levels=[
            {"code": "silver", "name": "银卡", "threshold": 0, "lottery_weight": 1},
            {"code": "gold", "name": "金卡", "threshold": 1000, "lottery_weight": 4}])
        member_tier_override(actor=actor, program=program, member=member,
                             level=program.levels.get(code="gold"), reason="测试金卡")
    return member


def test_the_members_level_weights_the_odds(actor, tenant):
    lot = lottery(actor, daily_limit=0, prizes=[
        {"name": "积分大礼", "action": "points", "params": {"points": 1}, "weight": 1,
         "stock": 1000},
        {"name": "谢谢参与", "kind": "thanks", "weight": 9}])
    regular, gold = person(actor), gold_member(actor)
    with tenant_scope(tenant):
        assert [(o["prize"].name, o["chance"]) for o in lottery_odds(lottery=lot, member=regular)
                ] == [("积分大礼", Fraction(1, 10)), ("谢谢参与", Fraction(9, 10))]
        assert [str(o["chance"]) for o in lottery_odds(lottery=lot, member=gold)] == [
            "4/13", "9/13"]
    # The same point on the wheel: thanks for a regular member, the prize for a gold one.
    assert draw(actor, lot, regular, rng=Fixed(0.2)) == "thanks"
    assert draw(actor, lot, gold, rng=Fixed(0.2)) == "won"
    seeded = random.Random(2026)
    wins = {who: sum(draw(actor, lot, member, rng=seeded) == "won" for _i in range(80))
            for who, member in (("regular", regular), ("gold", gold))}
    assert wins["gold"] > 2 * wins["regular"] > 0
    with tenant_scope(tenant):
        assert set(LotteryDraw.objects.filter(member=gold).values_list(
            "weight_multiplier", flat=True)) == {4}
    with tenant_scope(tenant):
        lottery_save(actor=actor, lottery=lot, changes={"tier_weighted": False})
    assert draw(actor, lot, gold, rng=Fixed(0.2)) == "thanks"


def test_a_member_draws_within_the_daily_and_total_limits(actor, tenant):
    lot = lottery(actor, daily_limit=2, total_limit=3, prizes=[
        {"name": "积分", "action": "points", "params": {"points": 1}, "stock": 100}])
    member = person(actor)
    today = [draw(actor, lot, member) for _i in range(3)]
    tomorrow = timezone.now() + timezone.timedelta(days=1)
    later = [draw(actor, lot, member, now=tomorrow) for _i in range(2)]
    assert today == ["won", "won", "daily_limit_reached"]
    assert later == ["won", "total_limit_reached"]
    assert draw(actor, lot, person(actor)) == "won"  # limits are per member
    with tenant_scope(tenant):
        assert LotteryParticipant.objects.get(member=member).draws_total == 3
        assert LotteryDraw.objects.filter(member=member).count() == 3


def test_the_points_cost_is_given_back_when_the_draw_fails(actor, tenant):
    template = coupon_template(actor, code="lucky", name="幸运券")
    lot = lottery(actor, points_cost=10, prizes=[
        {"name": "幸运券", "action": "coupon", "params": {"template": "lucky"}, "stock": 5}])
    member = funded(actor, 100)
    with tenant_scope(tenant):
        coupon_template_save(actor=actor, template=template, changes={"is_active": False})
    assert draw(actor, lot, member) == "prize_unavailable"

    def unchanged():
        with tenant_scope(tenant):
            prize = LotteryPrize.objects.get()
            assert (prize.stock, prize.awarded) == (5, 0)
            assert not LotteryDraw.objects.exists()
            assert not PointsEntry.objects.filter(kind="redeem").exists()
            assert not LotteryParticipant.objects.filter(draws_total__gt=0).exists()
        assert points_of(member) == 100

    unchanged()
    with tenant_scope(tenant):
        coupon_template_save(actor=actor, template=template, changes={"is_active": True})
    assert draw(actor, lot, member) == "won"
    assert (points_of(member), coupons_of(member)) == (90, ["lucky"])
    poor = funded(actor, 5)
    assert draw(actor, lot, poor) == "insufficient_points"
    assert points_of(poor) == 5


def test_no_stock_when_every_prize_is_gone_and_nothing_is_charged(api_client, actor, tenant):
    lot = lottery(actor, points_cost=10, daily_limit=0, prizes=[
        {"name": "积分", "action": "points", "params": {"points": 1}, "stock": 1},
        {"name": "谢谢参与", "kind": "thanks", "weight": 1}])
    member = funded(actor, 100)
    outcomes = [draw(actor, lot, member, rng=Fixed(0.0)) for _i in range(2)]
    assert outcomes == ["won", "no_stock"]  # thanks alone is no lottery
    response = api_client.post(f"{LOTTERIES}{lot.pk}/draws/", {"member": member.pk},
                               format="json")
    assert (response.status_code, response.json()["code"]) == (409, "no_stock")
    assert points_of(member) == 90 + 1


def test_a_product_code_enters_once(actor, tenant):
    lot = lottery(actor, allow_draw=False, allow_product_code=True)
    with tenant_scope(tenant):
        assert lottery_codes_add(actor=actor, lottery=lot, codes=["ABC-123", "abc-123",
                                                                   "XYZ-789"]) == 2
    first, second = person(actor), person(actor)
    assert draw(actor, lot, first, product_code="abc-123") == "won"
    assert draw(actor, lot, second, product_code="ABC-123") == "code_used"
    assert draw(actor, lot, first, product_code="NOPE-000") == "invalid_code"
    assert draw(actor, lot, first) == "draw_not_allowed"
    assert draw(actor, lot, first, product_code="XYZ-789") == "won"  # each code is an entry
    with tenant_scope(tenant):
        assert list(LotteryDraw.objects.order_by("pk").values_list(
            "member_id", "source", "product_code")) == [
            (first.pk, "product_code", "ABC-123"), (first.pk, "product_code", "XYZ-789")]


def test_a_draw_is_idempotent_on_its_key(actor, tenant):
    lot = lottery(actor, points_cost=10, daily_limit=0)
    member = funded(actor, 100)
    partner = client_for(tenant, scopes=["members:write"])
    url = f"{LOTTERIES}{lot.pk}/draws/"
    first = partner.post(url, {"member": member.pk}, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    again = partner.post(url, {"member": member.pk}, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert (again["Idempotent-Replayed"], again.json()) == ("true", first.json())
    assert first.json()["prize"]["name"] == "积分大礼"
    with tenant_scope(tenant):
        assert lottery_draw(actor=actor, lottery=lot, member=member,
                            idempotency_key="api:d-1").replayed is True
        assert LotteryDraw.objects.count() == 1
    assert points_of(member) == 100 - 10 + 100
    other = partner.post(url, {"member": person(actor).pk}, format="json",
                         HTTP_IDEMPOTENCY_KEY="d-1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


def test_the_api_manages_lotteries_and_their_prizes(api_client, actor, tenant):
    coupon_template(actor, code="lucky", name="幸运券")
    body = {"name": "双旦抽奖", "points_cost": 20, "daily_limit": 1,
            "prizes": [{"name": "幸运券", "action": "coupon", "params": {"template": "lucky"},
                        "weight": 1, "stock": 10},
                       {"name": "谢谢参与", "kind": "thanks", "weight": 5}]}
    response = api_client.post(LOTTERIES, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    prize_id = created["prizes"][0]["id"]
    assert [(p["name"], p["kind"], p["stock"]) for p in created["prizes"]] == [
        ("幸运券", "reward", 10), ("谢谢参与", "thanks", 0)]
    patched = api_client.patch(f"{LOTTERIES}{created['id']}/", {"prizes": [
        {"id": prize_id, "name": "幸运券", "action": "coupon", "params": {"template": "lucky"},
         "stock": 3}]}, format="json")
    assert patched.status_code == 200, patched.json()
    assert [(p["id"], p["stock"]) for p in patched.json()["prizes"]] == [(prize_id, 3)]
    for prizes, code in (([{"name": "谢谢参与", "kind": "thanks"}], "invalid_prize"),
                         ([{"name": "券", "action": "coupon", "params": {"template": "x"}}],
                          "invalid_reward")):
        bad = api_client.post(LOTTERIES, {"name": "坏的", "prizes": prizes}, format="json")
        assert (bad.status_code, bad.json()["code"]) == (400, code)
    assert [lot["name"] for lot in api_client.get(LOTTERIES).json()["results"]] == ["双旦抽奖"]
    assert api_client.get(f"{LOTTERIES}{created['id']}/draws/").json()["results"] == []


@pytest.mark.parametrize("method", ["get", "patch", "draw", "draws", "codes"])
def test_another_tenants_lottery_is_404(api_client, other_tenant, method):
    theirs = lottery(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))
    url = f"{LOTTERIES}{theirs.pk}/"
    response = {
        "get": lambda: api_client.get(url),
        "patch": lambda: api_client.patch(url, {"name": "x"}, format="json"),
        "draw": lambda: api_client.post(f"{url}draws/", {"member": 1}, format="json"),
        "draws": lambda: api_client.get(f"{url}draws/"),
        "codes": lambda: api_client.post(f"{url}codes/", {"count": 2}, format="json"),
    }[method]()
    assert response.status_code == 404
    with tenant_scope(other_tenant):
        theirs.refresh_from_db()
        assert (theirs.name, theirs.codes.count(), theirs.draws.count()) == ("周年庆抽奖", 0, 0)
