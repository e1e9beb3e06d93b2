"""Real threads on PostgreSQL: a flash sale rush never oversells and charges only the
winners; one member hammering a limited offer gets it once; retries of one request with the
same idempotency key place one redemption."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from members.models import Member
from members.services.numbers import member_numbers_allocate
from points.models import FlashSale, MallItem, MallRedemption, PointsAccount, PointsEntry
from points.selectors import ledger_drift
from points.services import points_earn
from points.services.mall import flash_sale_create, mall_item_create, mall_redeem
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.points.conftest import days

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
FUNDS = 1000
PRICE = 30


def members_funded(actor, count: int) -> list[Member]:
    with tenant_scope(actor.tenant):
        numbers = member_numbers_allocate(tenant_id=actor.tenant.pk, count=count)
        members = Member.objects.bulk_create(
            [Member(tenant=actor.tenant, member_no=no, name=f"会员{no}") for no in numbers])
        for member in members:
            points_earn(actor=actor, member=member, points=FUNDS, reason="充值")
    return members


def rush(tenant, calls: list) -> list[str]:
    """Run each ``mall_redeem`` keyword set on the pool; the outcome of each, in order."""

    def attempt(kwargs: dict) -> str:
        try:
            with tenant_scope(tenant):
                result = mall_redeem(**kwargs)
            return "replayed" if result.replayed else "ok"
        except ApplicationError as exc:
            return exc.code
        finally:
            connection.close()  # each call on its own connection; none left open

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(attempt, calls))


def test_a_flash_sale_rush_sells_exactly_its_stock(tenant, actor):
    with tenant_scope(tenant):
        item = mall_item_create(actor=actor, name="茅台", points=1999, stock=500)
        sale = flash_sale_create(actor=actor, item=item, starts_at=days(-1), ends_at=days(1),
                                 points=PRICE, stock=100)
    members = members_funded(actor, 1000)

    outcomes = rush(tenant, [{"actor": actor, "member": member, "item": item,
                              "flash_sale": sale} for member in members])

    assert Counter(outcomes) == {"ok": 100, "out_of_stock": 900}
    winners = {member.pk for member, outcome in zip(members, outcomes, strict=True)
               if outcome == "ok"}
    with tenant_scope(tenant):
        assert (FlashSale.objects.get(pk=sale.pk).stock, FlashSale.objects.get(pk=sale.pk).sold
                ) == (0, 100)
        assert MallItem.objects.filter(pk=item.pk).values_list("stock", "sold").get() == (500, 0)
        assert set(MallRedemption.objects.values_list("member_id", flat=True)) == winners
        assert MallRedemption.objects.count() == 100
        assert PointsEntry.objects.filter(kind="redeem").count() == 100
        balances = dict(PointsAccount.objects.values_list("member_id", "balance"))
        assert ledger_drift() == []
    assert balances == {member.pk: FUNDS - PRICE if member.pk in winners else FUNDS
                        for member in members}


@pytest.mark.parametrize("in_flash_sale", [False, True])
def test_one_member_racing_a_limit_of_one_gets_it_once(tenant, actor, in_flash_sale):
    with tenant_scope(tenant):
        item = mall_item_create(actor=actor, name="限量帆布袋", points=PRICE, stock=100,
                                per_member_limit=1)
        sale = flash_sale_create(actor=actor, item=item, starts_at=days(-1), ends_at=days(1),
                                 points=PRICE, stock=100, per_member_limit=1)
    [member] = members_funded(actor, 1)
    offer = {"flash_sale": sale} if in_flash_sale else {}

    outcomes = rush(tenant, [{"actor": actor, "member": member, "item": item, **offer}] * 20)

    assert Counter(outcomes) == {"ok": 1, "limit_reached": 19}
    with tenant_scope(tenant):
        offered = FlashSale if in_flash_sale else MallItem
        assert offered.objects.filter(pk=sale.pk if in_flash_sale else item.pk).values_list(
            "stock", "sold").get() == (99, 1)
        assert MallRedemption.objects.count() == 1
        assert list(PointsEntry.objects.filter(kind="redeem").values_list("points",
                                                                          flat=True)) == [-PRICE]
        assert PointsAccount.objects.get(member_id=member.pk).balance == FUNDS - PRICE
        assert ledger_drift() == []


def test_retries_with_one_idempotency_key_place_one_redemption(tenant, actor):
    with tenant_scope(tenant):
        item = mall_item_create(actor=actor, name="雨伞", points=PRICE, stock=100)
    [member] = members_funded(actor, 1)

    outcomes = rush(tenant, [{"actor": actor, "member": member, "item": item,
                              "idempotency_key": "api:retry-1"}] * 20)

    assert Counter(outcomes) == {"ok": 1, "replayed": 19}
    with tenant_scope(tenant):
        assert MallRedemption.objects.count() == 1
        assert MallItem.objects.filter(pk=item.pk).values_list("stock", "sold").get() == (99, 1)
        assert PointsAccount.objects.get(member_id=member.pk).balance == FUNDS - PRICE
