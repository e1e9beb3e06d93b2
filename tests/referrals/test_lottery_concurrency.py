"""Real threads on PostgreSQL: a rush on a guaranteed-win lottery never gives more prizes than
its stock and charges only the winners; one member hammering the lottery stays within their
limit; retries of one draw with the same key draw once."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from campaigns.referrals.models import LotteryDraw, LotteryParticipant, LotteryPrize
from campaigns.referrals.services import lottery_draw, lottery_save
from members.models import Member
from members.services.numbers import member_numbers_allocate
from points.models import PointsAccount
from points.selectors import ledger_drift
from points.services import points_earn
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.referrals.conftest import days

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50
FUNDS, COST = 100, 10


def members_funded(actor, count: int) -> list[Member]:
    with tenant_scope(actor.tenant):
        numbers = member_numbers_allocate(tenant_id=actor.tenant.pk, count=count)
        members = Member.objects.bulk_create(
            [Member(tenant=actor.tenant, member_no=no, name=f"会员{no}") for no in numbers])
        for member in members:
            points_earn(actor=actor, member=member, points=FUNDS, reason="充值")
    return members


def guaranteed_win(actor, **changes):
    with tenant_scope(actor.tenant):
        return lottery_save(actor=actor, changes={"name": "必中抽奖", "starts_at": days(-1),
                                                  "points_cost": COST, **changes},
                            prizes=[{"name": "积分大礼", "action": "points",
                                     "params": {"points": 1}, "stock": 5}])


def rush(tenant, calls: list[dict]) -> list[str]:
    def attempt(kwargs: dict) -> str:
        try:
            with tenant_scope(tenant):
                result = lottery_draw(**kwargs)
            return "replayed" if result.replayed else result.draw.outcome
        except ApplicationError as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(attempt, calls))


def test_fifty_concurrent_draws_win_exactly_the_five_in_stock(tenant, actor):
    lot = guaranteed_win(actor)
    members = members_funded(actor, 50)

    outcomes = rush(tenant, [{"actor": actor, "lottery": lot, "member": m} for m in members])

    assert Counter(outcomes) == {"won": 5, "no_stock": 45}
    winners = {m.pk for m, outcome in zip(members, outcomes, strict=True) if outcome == "won"}
    with tenant_scope(tenant):
        prize = LotteryPrize.objects.get()
        assert (prize.stock, prize.awarded) == (0, 5)
        assert set(LotteryDraw.objects.values_list("member_id", flat=True)) == winners
        assert LotteryDraw.objects.count() == 5
        balances = dict(PointsAccount.objects.values_list("member_id", "balance"))
        assert ledger_drift() == []
    assert balances == {m.pk: FUNDS - COST + 1 if m.pk in winners else FUNDS for m in members}


def test_one_member_hammering_the_lottery_draws_only_their_limit(tenant, actor):
    lot = guaranteed_win(actor, daily_limit=3)
    with tenant_scope(tenant):
        LotteryPrize.objects.update(stock=100)
    (member,) = members_funded(actor, 1)

    outcomes = rush(tenant, [{"actor": actor, "lottery": lot, "member": member}] * 20)

    assert Counter(outcomes) == {"won": 3, "daily_limit_reached": 17}
    with tenant_scope(tenant):
        assert LotteryParticipant.objects.get().draws_total == 3
        assert LotteryPrize.objects.get().stock == 97
        assert PointsAccount.objects.get(member=member).balance == FUNDS - 3 * COST + 3


def test_retries_of_one_draw_with_its_key_draw_once(tenant, actor):
    lot = guaranteed_win(actor, daily_limit=0)
    (member,) = members_funded(actor, 1)

    outcomes = rush(tenant, [{"actor": actor, "lottery": lot, "member": member,
                              "idempotency_key": "api:retry-1"}] * 10)

    assert Counter(outcomes) == {"won": 1, "replayed": 9}
    with tenant_scope(tenant):
        assert LotteryDraw.objects.count() == 1
        assert PointsAccount.objects.get(member=member).balance == FUNDS - COST + 1
