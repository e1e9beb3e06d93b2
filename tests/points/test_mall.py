"""The points mall: the catalogue and flash sales, redemptions of each kind of item, their
fulfilment and cancellation; every refusal changes nothing, and other tenants' and other
guides' data stay invisible."""

import pytest
from django.test import Client

from points.models import (
    FlashSale,
    MallItem,
    MallRedemption,
    MemberTier,
    PointsEntry,
    TierLevel,
    TierProgram,
)
from points.services import points_earn
from points.services.mall import (
    flash_sale_create,
    mall_item_create,
    mall_redeem,
    mall_redemption_cancel,
)
from points.signals import mall_redeemed
from scrm.access import ALL_SCOPES, POINTS_READ, POINTS_WRITE, Actor
from scrm.api.errors import ApplicationError
from scrm.models import AuditEntry, IdempotencyRecord, Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.points.conftest import balance, books_balance, days, new_member, state

ITEMS = "/api/v1/mall/items/"
SALES = "/api/v1/mall/flash-sales/"
REDEMPTIONS = "/api/v1/mall/redemptions/"
ADDRESS = {"name": "王芳", "phone": "13800001234", "city": "上海", "detail": "南京西路 1 号"}


def item_url(item_id: int) -> str:
    return f"{ITEMS}{item_id}/"


def sale_url(sale_id: int) -> str:
    return f"{SALES}{sale_id}/"


def redemption_url(redemption_id: int, tail: str = "") -> str:
    return f"{REDEMPTIONS}{redemption_id}/{tail}"


def item_create(actor: Actor, **fields) -> MallItem:
    with tenant_scope(actor.tenant):
        return mall_item_create(actor=actor, **{"name": "保温杯", "points": 100, "stock": 10,
                                                **fields})


def sale_create(actor: Actor, item: MallItem, **fields) -> FlashSale:
    values = {"starts_at": days(-1), "ends_at": days(1), "points": 30, "stock": 5, **fields}
    with tenant_scope(actor.tenant):
        return flash_sale_create(actor=actor, item=item, **values)


def fund(actor: Actor, member, points: int = 1000) -> None:
    with tenant_scope(actor.tenant):
        points_earn(actor=actor, member=member, points=points, reason="活动")


def redeem(client, who, what, headers: dict | None = None, **body):
    """POST a redemption of item ``what`` for member ``who`` (``body`` may override them)."""
    return client.post(REDEMPTIONS, {"member": who.pk, "item": what.pk, **body},
                       format="json", **(headers or {}))


def mall_state(tenant) -> dict:
    """Points, stock and orders: everything a redemption or cancellation could touch."""
    with tenant_scope(tenant):
        return {
            **state(tenant),
            "items": sorted(MallItem.objects.values_list("id", "stock", "sold")),
            "sales": sorted(FlashSale.objects.values_list("id", "stock", "sold")),
            "redemptions": sorted(MallRedemption.objects.values_list("id", "status")),
        }


def stock(obj) -> tuple[int, int]:
    with tenant_scope(obj.tenant_id):
        fresh = type(obj).objects.get(pk=obj.pk)
    return fresh.stock, fresh.sold


@pytest.fixture
def gift(actor) -> MallItem:
    return item_create(actor)


@pytest.fixture
def funded(actor, member):
    fund(actor, member)
    return member


@pytest.fixture
def signals_sent():
    sent = []

    def receiver(sender, tenant_id, redemption_id, **kwargs):
        sent.append((tenant_id, redemption_id))

    mall_redeemed.connect(receiver)
    yield sent
    mall_redeemed.disconnect(receiver)


@pytest.fixture
def levels(tenant) -> dict[str, TierLevel]:
    with tenant_scope(tenant):
        program = TierProgram.objects.create(tenant=tenant, name="会员等级")
        return {code: TierLevel.objects.create(tenant=tenant, program=program, rank=rank,
                                               code=code, name=code, threshold=threshold)
                for rank, code, threshold in ((1, "silver", 0), (2, "gold", 1000))}


def give_level(member, level: TierLevel) -> None:
    with tenant_scope(member.tenant_id):
        MemberTier.objects.create(tenant_id=member.tenant_id, program_id=level.program_id,
                                  member=member, level=level)


# Redeeming each kind of item


def test_a_gift_is_redeemed_then_fulfilled(tenant, api_client, funded, gift, signals_sent,
                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = redeem(api_client, funded, gift, quantity=2, address=ADDRESS)

    assert response.status_code == 201, response.json()
    body = response.json()
    with tenant_scope(tenant):
        redemption = MallRedemption.objects.get()
        entry = PointsEntry.objects.get(kind="redeem")
    assert body == {
        "id": redemption.pk, "member": funded.pk, "item": gift.pk, "item_name": "保温杯",
        "item_kind": "gift", "flash_sale": None, "quantity": 2, "points": 200, "cash_fen": 0,
        "payment_ref": "", "status": "created", "address": ADDRESS, "tracking_no": "",
        "operator": body["operator"], "points_entry": entry.pk,
        "created_at": body["created_at"], "fulfilled_at": None, "cancelled_at": None,
        "cancel_reason": "", "balance": 800}
    assert body["operator"].startswith("api_key:")
    assert (entry.points, entry.ref_type, entry.ref_id, entry.idempotency_key) == (
        -200, "mall_order", str(redemption.pk), f"mall:{redemption.pk}")
    assert (entry.reason, balance(funded)) == ("积分商城兑换：保温杯 × 2", 800)
    assert stock(gift) == (8, 2)
    assert signals_sent == [(tenant.pk, redemption.pk)]

    fulfilled = api_client.post(redemption_url(redemption.pk, "fulfil/"),
                                {"tracking_no": "SF1234567890"}, format="json")

    assert fulfilled.status_code == 200, fulfilled.json()
    assert (fulfilled.json()["status"], fulfilled.json()["tracking_no"]) == (
        "fulfilled", "SF1234567890")
    assert fulfilled.json()["fulfilled_at"] is not None
    assert api_client.get(redemption_url(redemption.pk)).json() == fulfilled.json()
    books_balance(tenant)


def test_a_coupon_stays_created_until_fulfilled_and_signals_only_after_commit(
        tenant, api_client, actor, funded, signals_sent, django_capture_on_commit_callbacks):
    coupon = item_create(actor, name="满 100 减 20 券", kind="coupon", points=50,
                         coupon_template="C100-20")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = redeem(api_client, funded, coupon)
    assert response.status_code == 201, response.json()
    assert signals_sent == []  # not before the redemption committed
    for callback in callbacks:
        callback()

    body = response.json()
    assert (body["item_kind"], body["status"], body["points"], body["balance"]) == (
        "coupon", "created", 50, 950)
    assert signals_sent == [(tenant.pk, body["id"])]
    with tenant_scope(tenant):
        assert MallRedemption.objects.get().status == "created"


def test_a_points_and_cash_item_needs_its_payment_ref(tenant, api_client, actor, funded):
    kettle = item_create(actor, name="电水壶", kind="points_cash", points=300, cash_fen=4900)
    before = mall_state(tenant)

    missing = redeem(api_client, funded, kettle)
    blank = redeem(api_client, funded, kettle, payment_ref="  ")

    for refused in (missing, blank):
        assert refused.status_code == 400
        assert refused.json() == {"code": "payment_ref_required",
                                  "message": "请求数据有误：积分+现金商品须提供支付单号。",
                                  "errors": {"payment_ref": ["积分+现金商品须提供支付单号。"]}}
    assert mall_state(tenant) == before

    paid = redeem(api_client, funded, kettle, quantity=2, payment_ref="WX20261201001")

    assert paid.status_code == 201, paid.json()
    assert (paid.json()["points"], paid.json()["cash_fen"], paid.json()["payment_ref"],
            paid.json()["balance"]) == (600, 9800, "WX20261201001", 400)


def test_a_flash_sale_redeems_at_its_own_price_from_its_own_stock(tenant, api_client, actor,
                                                                  funded, gift):
    sale = sale_create(actor, gift, name="双十二秒杀", points=30, stock=5)

    response = redeem(api_client, funded, gift, flash_sale=sale.pk)

    assert response.status_code == 201, response.json()
    assert (response.json()["flash_sale"], response.json()["points"],
            response.json()["balance"]) == (sale.pk, 30, 970)
    assert (stock(sale), stock(gift)) == ((4, 1), (10, 0))
    listed = api_client.get(ITEMS).json()["results"]
    assert [(item["id"], item["flash_sale"]["id"], item["flash_sale"]["stock"])
            for item in listed] == [(gift.pk, sale.pk, 4)]


def test_a_tier_restricted_item_is_for_the_levels_it_names(tenant, api_client, actor, funded,
                                                           other_member, levels):
    fund(actor, other_member)
    give_level(funded, levels["gold"])
    give_level(other_member, levels["silver"])
    wine = item_create(actor, name="年份酒", allowed_tiers=["gold"])
    before = mall_state(tenant)

    refused = redeem(api_client, other_member, wine)

    assert refused.status_code == 409
    assert refused.json() == {"code": "tier_not_allowed", "message": "会员等级不符合兑换条件。"}
    assert mall_state(tenant) == before
    assert redeem(api_client, funded, wine).status_code == 201


# Refusals


def _inactive(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(is_active=False)
    return {}


def _not_yet(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(starts_at=days(1))
    return {}


def _over(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(starts_at=days(-5), ends_at=days(-1))
    return {}


def _sale_not_started(actor, item, member):
    return {"flash_sale": sale_create(actor, item, starts_at=days(1), ends_at=days(2)).pk}


def _sale_ended(actor, item, member):
    return {"flash_sale": sale_create(actor, item, starts_at=days(-2), ends_at=days(-1)).pk}


def _sale_inactive(actor, item, member):
    return {"flash_sale": sale_create(actor, item, is_active=False).pk}


def _sold_out(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(stock=1)
    return {"quantity": 2}


def _sale_sold_out(actor, item, member):
    return {"flash_sale": sale_create(actor, item, stock=0).pk}


def _limit(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(per_member_limit=3)
        mall_redeem(actor=actor, member=member, item=MallItem.objects.get(pk=item.pk),
                    quantity=2)
    return {"quantity": 2}


def _sale_limit(actor, item, member):
    sale = sale_create(actor, item, per_member_limit=1)
    with tenant_scope(actor.tenant):
        mall_redeem(actor=actor, member=member, item=item, flash_sale=sale)
    return {"flash_sale": sale.pk}


def _too_dear(actor, item, member):
    with tenant_scope(actor.tenant):
        MallItem.objects.filter(pk=item.pk).update(points=600)
    return {"quantity": 2}


@pytest.mark.parametrize(("arrange", "code", "message"), [
    (_inactive, "item_unavailable", "该商品已下架。"),
    (_not_yet, "item_unavailable", "该商品不在兑换时间内。"),
    (_over, "item_unavailable", "该商品不在兑换时间内。"),
    (_sale_inactive, "item_unavailable", "该商品已下架。"),
    (_sale_not_started, "flash_sale_not_started", "秒杀尚未开始。"),
    (_sale_ended, "flash_sale_ended", "秒杀已结束。"),
    (_sold_out, "out_of_stock", "库存不足。"),
    (_sale_sold_out, "out_of_stock", "库存不足。"),
    (_limit, "limit_reached", "每人限兑 3 件，已兑换 2 件。"),
    (_sale_limit, "limit_reached", "每人限兑 1 件，已兑换 1 件。"),
    (_too_dear, "insufficient_points", "积分不足：可用 1000，需要 1200。"),
])
def test_a_refused_redemption_is_a_409_and_changes_nothing(tenant, api_client, actor, funded,
                                                           gift, arrange, code, message):
    body = arrange(actor, gift, funded)
    before = mall_state(tenant)

    response = redeem(api_client, funded, gift, **body)

    assert response.status_code == 409
    assert response.json() == {"code": code, "message": message}
    assert mall_state(tenant) == before
    books_balance(tenant)


@pytest.mark.parametrize(("body", "field"), [
    ({"quantity": 0}, "quantity"),
    ({"quantity": -1}, "quantity"),
    ({"quantity": 100}, "quantity"),
    ({"quantity": 10**9}, "quantity"),
    ({"quantity": "两"}, "quantity"),
    ({"quantity": 1.5}, "quantity"),
    ({"member": None}, "member"),
    ({"address": "上海"}, "address"),
    ({"address": {f"k{n}": "x" for n in range(21)}}, "address"),
    ({"payment_ref": "x" * 65}, "payment_ref"),
    ({"coupon": "C1"}, "coupon"),
])
def test_bad_input_is_a_400_and_changes_nothing(tenant, api_client, funded, gift, body, field):
    before = mall_state(tenant)

    response = redeem(api_client, funded, gift, **body)

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == [field]
    assert mall_state(tenant) == before


def test_a_flash_sale_of_another_item_is_a_400(tenant, api_client, actor, funded, gift):
    sale = sale_create(actor, item_create(actor, name="雨伞"))
    before = mall_state(tenant)

    response = redeem(api_client, funded, gift, flash_sale=sale.pk)

    assert (response.status_code, response.json()["code"]) == (400, "flash_sale_mismatch")
    assert response.json()["errors"] == {"flash_sale": ["该秒杀不属于这个商品。"]}
    assert mall_state(tenant) == before


def test_the_service_refuses_an_absurd_quantity_itself(tenant, actor, funded, gift):
    before = mall_state(tenant)
    with tenant_scope(tenant):
        for quantity in (0, 100, True, "1"):
            with pytest.raises(ApplicationError) as refused:
                mall_redeem(actor=actor, member=funded, item=gift, quantity=quantity)
            assert (refused.value.code, refused.value.status_code) == ("invalid_quantity", 400)
    assert mall_state(tenant) == before


def test_unknown_members_items_and_flash_sales_are_404(tenant, api_client, funded, gift):
    before = mall_state(tenant)

    for body in ({"member": 999_999, "item": gift.pk}, {"member": funded.pk, "item": 999_999},
                 {"member": funded.pk, "item": gift.pk, "flash_sale": 999_999}):
        response = api_client.post(REDEMPTIONS, body, format="json")
        assert response.json() == {"code": "not_found", "message": "未找到。"}
    for url in (item_url(999_999), sale_url(999_999), redemption_url(999_999)):
        assert api_client.get(url).status_code == 404
    for tail in ("fulfil/", "cancel/"):
        response = api_client.post(redemption_url(999_999, tail), {"reason": "x"},
                                   format="json")
        assert response.status_code == 404
    assert mall_state(tenant) == before


# Idempotency


def test_an_idempotency_key_answers_with_the_first_redemption(tenant, api_client, funded,
                                                              gift):
    headers = {"HTTP_IDEMPOTENCY_KEY": "mall-1"}

    first = redeem(api_client, funded, gift, headers=headers)
    again = redeem(api_client, funded, gift, headers=headers)
    other = redeem(api_client, funded, gift, quantity=2, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    with tenant_scope(tenant):
        assert list(MallRedemption.objects.values_list("idempotency_key", flat=True)) == [
            "api:mall-1"]

    # Once the recorded answer is gone (it is kept for a week), the redemption still holds
    # the key: the same request answers with it, another is refused.
    with tenant_scope(tenant):
        IdempotencyRecord.objects.all().delete()
    before = mall_state(tenant)
    later = redeem(api_client, funded, gift, headers=headers)
    changed = redeem(api_client, funded, gift, address=ADDRESS, headers=headers)

    assert later.status_code == 200, later.json()
    assert later.json() == {**first.json(), "balance": 900}
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    assert mall_state(tenant) == before
    assert balance(funded) == 900


def test_the_service_replays_a_key_and_refuses_it_for_another_request(tenant, actor, funded,
                                                                      other_member, gift):
    fund(actor, other_member)
    with tenant_scope(tenant):
        first = mall_redeem(actor=actor, member=funded, item=gift, idempotency_key="k1")
        again = mall_redeem(actor=actor, member=funded, item=gift, idempotency_key="k1")
        for changes in ({"quantity": 2}, {"member": other_member}, {"payment_ref": "P1"}):
            with pytest.raises(ApplicationError) as refused:
                mall_redeem(**{"actor": actor, "member": funded, "item": gift,
                               "idempotency_key": "k1", **changes})
            assert refused.value.code == "idempotency_key_reused"

    assert (first.replayed, again.replayed) == (False, True)
    assert again.redemption.pk == first.redemption.pk
    assert (again.balance, balance(funded), stock(gift)) == (900, 900, (9, 1))


# Cancelling


def test_cancelling_gives_back_the_points_and_the_stock(tenant, api_client, actor, funded,
                                                        gift):
    sale = sale_create(actor, gift, per_member_limit=1)
    regular = redeem(api_client, funded, gift, quantity=3).json()
    flash = redeem(api_client, funded, gift, flash_sale=sale.pk).json()
    assert (balance(funded), stock(gift), stock(sale)) == (670, (7, 3), (4, 1))

    for redemption in (regular, flash):
        response = api_client.post(redemption_url(redemption["id"], "cancel/"),
                                   {"reason": "顾客不要了"}, format="json")
        assert response.status_code == 200, response.json()
        assert (response.json()["status"], response.json()["cancel_reason"]) == (
            "cancelled", "顾客不要了")

    assert (balance(funded), stock(gift), stock(sale)) == (1000, (10, 0), (5, 0))
    with tenant_scope(tenant):
        restores = list(PointsEntry.objects.filter(kind="reverse").order_by("id").values_list(
            "points", "ref_type", "ref_id", "idempotency_key", "reason"))
    assert restores == [
        (300, "mall_order", str(regular["id"]), f"mall_cancel:{regular['id']}",
         "积分商城订单取消：顾客不要了"),
        (30, "mall_order", str(flash["id"]), f"mall_cancel:{flash['id']}",
         "积分商城订单取消：顾客不要了"),
    ]
    books_balance(tenant)
    # A cancelled redemption no longer counts towards the limit.
    assert redeem(api_client, funded, gift, flash_sale=sale.pk).status_code == 201


def test_only_a_created_redemption_can_be_cancelled_or_fulfilled(tenant, api_client, funded,
                                                                 gift):
    shipped = redeem(api_client, funded, gift).json()["id"]
    dropped = redeem(api_client, funded, gift).json()["id"]
    api_client.post(redemption_url(shipped, "fulfil/"), {}, format="json")
    api_client.post(redemption_url(dropped, "cancel/"), {"reason": "x"}, format="json")
    before = mall_state(tenant)

    for redemption_id, status in ((shipped, "已发放"), (dropped, "已取消")):
        for tail, body in (("cancel/", {"reason": "再来"}), ("fulfil/", {})):
            response = api_client.post(redemption_url(redemption_id, tail), body,
                                       format="json")
            assert response.status_code == 409
            assert response.json() == {"code": "invalid_status",
                                       "message": f"订单状态为“{status}”，不能这样操作。"}
    assert mall_state(tenant) == before


def test_a_cancellation_needs_a_reason(tenant, api_client, actor, funded, gift):
    redemption_id = redeem(api_client, funded, gift).json()["id"]
    before = mall_state(tenant)

    response = api_client.post(redemption_url(redemption_id, "cancel/"), {}, format="json")

    assert (response.status_code, list(response.json()["errors"])) == (400, ["reason"])
    with tenant_scope(tenant), pytest.raises(ApplicationError) as refused:
        mall_redemption_cancel(actor=actor, redemption=MallRedemption.objects.get(),
                               reason=" ")
    assert refused.value.code == "reason_required"
    assert mall_state(tenant) == before


# The catalogue


def test_the_catalogue_lists_what_is_on_sale_with_its_running_flash_sale(
        tenant, api_client, actor, django_assert_max_num_queries):
    cup = item_create(actor, name="杯", sort_order=2)
    pen = item_create(actor, name="笔", sort_order=1)
    hidden = item_create(actor, name="下架", is_active=False)
    later = item_create(actor, name="未上架", starts_at=days(1))
    sale = sale_create(actor, cup, name="秒杀", points=10, stock=3)
    sale_create(actor, cup, starts_at=days(1), ends_at=days(2))  # not running yet

    listed = api_client.get(ITEMS).json()
    everything = api_client.get(ITEMS, {"all": "true"}).json()

    assert [(item["name"], item["flash_sale"] and item["flash_sale"]["id"])
            for item in listed["results"]] == [("笔", None), ("杯", sale.pk)]
    assert listed["results"][1]["flash_sale"] == {
        "id": sale.pk, "name": "秒杀", "starts_at": listed["results"][1]["flash_sale"]["starts_at"],
        "ends_at": listed["results"][1]["flash_sale"]["ends_at"], "points": 10, "cash_fen": 0,
        "stock": 3, "sold": 0, "per_member_limit": 1}
    assert {item["id"] for item in everything["results"]} == {cup.pk, pen.pk, hidden.pk,
                                                              later.pk}
    assert api_client.get(ITEMS, {"kind": "coupon"}).json()["results"] == []
    assert api_client.get(ITEMS, {"kind": "car"}).status_code == 400
    reader = client_for(tenant, scopes=[POINTS_READ])
    assert reader.get(ITEMS).status_code == 200
    assert reader.get(ITEMS, {"all": "true"}).status_code == 403
    # The query count does not grow with the items and their flash sales.
    with django_assert_max_num_queries(10) as few:
        api_client.get(ITEMS, {"all": "true"})
    for n in range(4):
        sale_create(actor, item_create(actor, name=f"新品{n}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api_client.get(ITEMS, {"all": "true"}).json()["results"]) == 8


def test_managers_create_and_change_items(tenant, api_client, levels):
    created = api_client.post(ITEMS, {"name": "会员专享礼盒", "kind": "gift", "points": 500,
                                      "stock": 20, "per_member_limit": 1,
                                      "allowed_tiers": ["gold"]}, format="json")
    assert created.status_code == 201, created.json()
    item = created.json()
    assert {key: item[key] for key in ("name", "kind", "points", "cash_fen", "stock", "sold",
                                       "per_member_limit", "allowed_tiers", "is_active",
                                       "flash_sale")} == {
        "name": "会员专享礼盒", "kind": "gift", "points": 500, "cash_fen": 0, "stock": 20,
        "sold": 0, "per_member_limit": 1, "allowed_tiers": ["gold"], "is_active": True,
        "flash_sale": None}

    changed = api_client.patch(item_url(item["id"]), {"stock": 50, "is_active": False},
                               format="json")

    assert changed.status_code == 200, changed.json()
    assert (changed.json()["stock"], changed.json()["is_active"], changed.json()["name"]) == (
        50, False, "会员专享礼盒")
    assert api_client.get(item_url(item["id"])).json() == changed.json()
    with tenant_scope(tenant):
        assert list(AuditEntry.objects.filter(action__startswith="mall.").order_by("id")
                    .values_list("action", "data")) == [
            ("mall.item_create", {"name": "会员专享礼盒", "kind": "gift", "points": 500,
                                  "stock": 20}),
            ("mall.item_update", {"before": {"stock": 20, "is_active": True},
                                  "after": {"stock": 50, "is_active": False}}),
        ]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"kind": "points_cash"}, "cash_fen", "积分+现金商品须设置现金金额。"),
    ({"cash_fen": 100}, "cash_fen", "只有积分+现金商品可以设置现金金额。"),
    ({"starts_at": "2026-12-02T10:00:00+08:00", "ends_at": "2026-12-01T10:00:00+08:00"},
     "ends_at", "下架时间须晚于上架时间。"),
    ({"allowed_tiers": ["diamond"]}, "allowed_tiers", "未知等级：diamond"),
])
def test_an_item_that_cannot_be_sold_is_refused(tenant, api_client, actor, gift, levels, body,
                                                field, message):
    before = mall_state(tenant)

    created = api_client.post(ITEMS, {"name": "x", "points": 1, **body}, format="json")
    changed = api_client.patch(item_url(gift.pk), body, format="json")

    for response in (created, changed):
        assert response.status_code == 400
        assert (response.json()["code"], response.json()["errors"]) == (
            "validation_error", {field: [message]})
    assert mall_state(tenant) == before


def test_flash_sales_are_created_changed_and_listed_by_state(tenant, api_client, actor,
                                                              gift):
    created = api_client.post(SALES, {"item": gift.pk, "name": "午间秒杀",
                                      "starts_at": "2030-01-01T12:00:00+08:00",
                                      "ends_at": "2030-01-01T13:00:00+08:00", "points": 9,
                                      "stock": 100}, format="json")
    assert created.status_code == 201, created.json()
    sale = created.json()
    assert sale == {"id": sale["id"], "item": gift.pk, "item_name": "保温杯", "name": "午间秒杀",
                    "starts_at": "2030-01-01T12:00:00+08:00",
                    "ends_at": "2030-01-01T13:00:00+08:00", "points": 9, "cash_fen": 0,
                    "stock": 100, "sold": 0, "per_member_limit": 1, "is_active": True,
                    "created_at": sale["created_at"]}
    running = sale_create(actor, gift)

    bad = api_client.patch(sale_url(sale["id"]), {"ends_at": "2030-01-01T11:00:00+08:00"},
                           format="json")
    moved = api_client.patch(sale_url(sale["id"]), {"stock": 80, "per_member_limit": 2},
                             format="json")

    assert (bad.status_code, bad.json()["errors"]) == (
        400, {"ends_at": ["结束时间须晚于开始时间。"]})
    assert (moved.json()["stock"], moved.json()["per_member_limit"]) == (80, 2)
    assert [s["id"] for s in api_client.get(SALES, {"state": "upcoming"}).json()["results"]] == [
        sale["id"]]
    assert [s["id"] for s in api_client.get(SALES, {"state": "running"}).json()["results"]] == [
        running.pk]
    assert [s["id"] for s in api_client.get(SALES, {"item": gift.pk}).json()["results"]] == [
        sale["id"], running.pk]
    refused = api_client.post(SALES, {"item": gift.pk, "starts_at": "2030-01-01T12:00:00Z",
                                      "ends_at": "2030-01-01T12:00:00Z", "points": 1,
                                      "stock": 1}, format="json")
    assert (refused.status_code, list(refused.json()["errors"])) == (400, ["ends_at"])


def test_scopes_separate_reading_redeeming_and_managing(tenant, funded, gift):
    reader = client_for(tenant, scopes=[POINTS_READ])
    writer = client_for(tenant, scopes=[POINTS_READ, POINTS_WRITE])

    assert reader.get(ITEMS).status_code == 200
    assert redeem(reader, funded, gift).status_code == 403
    assert reader.post(ITEMS, {"name": "x", "points": 1}, format="json").status_code == 403
    redemption = redeem(writer, funded, gift)
    assert redemption.status_code == 201
    assert redemption.json()["address"] is None  # personal data: not for this key
    assert writer.patch(item_url(gift.pk), {"stock": 1}, format="json").status_code == 403
    assert writer.post(SALES, {}, format="json").status_code == 403
    fulfil = writer.post(redemption_url(redemption.json()["id"], "fulfil/"), {}, format="json")
    assert fulfil.status_code == 403
    cancel = writer.post(redemption_url(redemption.json()["id"], "cancel/"), {"reason": "x"},
                         format="json")
    assert cancel.status_code == 200


# Listing redemptions


def test_redemptions_are_listed_newest_first_with_filters(tenant, api_client, actor, funded,
                                                          other_member, gift):
    fund(actor, other_member)
    pen = item_create(actor, name="笔", points=10)
    ids = [redeem(api_client, member, item).json()["id"]
           for member, item in ((funded, gift), (other_member, gift), (funded, pen))]
    api_client.post(redemption_url(ids[0], "cancel/"), {"reason": "x"}, format="json")

    def listed(**params) -> list[int]:
        return [r["id"] for r in api_client.get(REDEMPTIONS, params).json()["results"]]

    assert listed() == ids[::-1]
    assert listed(member=funded.pk) == [ids[2], ids[0]]
    assert listed(item=gift.pk, status="created") == [ids[1]]
    first = api_client.get(REDEMPTIONS, {"page_size": 2}).json()
    assert [r["id"] for r in api_client.get(first["next"]).json()["results"]] == [ids[0]]
    assert api_client.get(REDEMPTIONS, {"status": "lost"}).status_code == 400


def test_another_tenants_mall_is_invisible_and_unchanged(tenant, other_tenant, api_client,
                                                        other_api_client, actor, funded, gift):
    sale = sale_create(actor, gift)
    redemption_id = redeem(api_client, funded, gift).json()["id"]
    stranger_actor = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    stranger = new_member(stranger_actor)
    fund(stranger_actor, stranger)
    before, theirs = mall_state(tenant), mall_state(other_tenant)

    for url in (item_url(gift.pk), sale_url(sale.pk), redemption_url(redemption_id)):
        assert other_api_client.get(url).status_code == 404
    assert other_api_client.patch(item_url(gift.pk), {"stock": 0},
                                  format="json").status_code == 404
    assert other_api_client.patch(sale_url(sale.pk), {"stock": 0},
                                  format="json").status_code == 404
    for tail, body in (("fulfil/", {}), ("cancel/", {"reason": "x"})):
        response = other_api_client.post(redemption_url(redemption_id, tail), body,
                                         format="json")
        assert response.status_code == 404
    for body in ({"member": stranger.pk, "item": gift.pk},
                 {"member": funded.pk, "item": gift.pk},
                 {"member": stranger.pk, "item": gift.pk, "flash_sale": sale.pk}):
        response = other_api_client.post(REDEMPTIONS, body, format="json")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert other_api_client.get(ITEMS, {"all": "true"}).json()["results"] == []
    assert other_api_client.get(SALES).json()["results"] == []
    assert other_api_client.get(REDEMPTIONS).json()["results"] == []
    assert (mall_state(tenant), mall_state(other_tenant)) == (before, theirs)


def test_guides_see_their_own_customers_redemptions_only(tenant, store, api_client, actor,
                                                         gift):
    guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    mine, someone_else = new_member(actor, guide=guide), new_member(actor)
    for member in (mine, someone_else):
        fund(actor, member)
    ids = {member.pk: redeem(api_client, member, gift).json()["id"]
           for member in (mine, someone_else)}
    client = Client()
    client.force_login(guide.user)

    listed = client.get(REDEMPTIONS).json()["results"]

    assert [(r["id"], r["member"], r["address"]) for r in listed] == [(ids[mine.pk], mine.pk,
                                                                       None)]
    assert client.get(redemption_url(ids[mine.pk])).status_code == 200
    assert client.get(redemption_url(ids[someone_else.pk])).status_code == 404
    assert client.get(REDEMPTIONS, {"member": someone_else.pk}).json()["results"] == []
    assert client.get(ITEMS).status_code == 200
    response = client.post(REDEMPTIONS, {"member": mine.pk, "item": gift.pk},
                           content_type="application/json")
    assert response.status_code == 403


def test_a_store_manager_redeems_only_for_their_stores_members(tenant, store, actor, gift):
    manager = StaffFactory(tenant=tenant, role=Role.STORE_MANAGER, store=store)
    ours, elsewhere = new_member(actor, store=store), new_member(actor)
    for member in (ours, elsewhere):
        fund(actor, member)
    client = Client()
    client.force_login(manager.user)
    before = mall_state(tenant)

    refused = client.post(REDEMPTIONS, {"member": elsewhere.pk, "item": gift.pk},
                          content_type="application/json")
    assert refused.status_code == 404
    assert mall_state(tenant) == before
    done = client.post(REDEMPTIONS, {"member": ours.pk, "item": gift.pk},
                       content_type="application/json")
    assert done.status_code == 201, done.json()
    assert (balance(ours), balance(elsewhere)) == (900, 1000)


# The admin


def test_the_admin_edits_items_through_the_services_and_acts_on_redemptions(
        tenant, actor, funded, gift):
    owner = StaffFactory(tenant=tenant, role=Role.OWNER)
    client = Client()
    client.force_login(owner.user)
    with tenant_scope(tenant):
        shipped = mall_redeem(actor=actor, member=funded, item=gift,
                              address=ADDRESS).redemption
        dropped = mall_redeem(actor=actor, member=funded, item=gift, quantity=2).redemption

    form = {"name": "帆布袋", "kind": "gift", "description": "", "image_url": "", "points": "80",
            "cash_fen": "0", "stock": "30", "per_member_limit": "0", "allowed_tiers": "[]",
            "coupon_template": "", "starts_at_0": "", "starts_at_1": "", "ends_at_0": "",
            "ends_at_1": "", "is_active": "on", "sort_order": "0"}
    added = client.post("/admin/points/mallitem/add/", form)
    assert added.status_code == 302, added.context["adminform"].form.errors
    refused = client.post("/admin/points/mallitem/add/", {**form, "cash_fen": "100"})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "cash_fen": ["只有积分+现金商品可以设置现金金额。"]}
    for url in ("mallitem", "flashsale", "mallredemption"):
        assert client.get(f"/admin/points/{url}/").status_code == 200
    page = client.get(f"/admin/points/mallredemption/{shipped.pk}/change/")
    assert "13800001234" in page.content.decode()

    client.post("/admin/points/mallredemption/", {"action": "fulfil",
                                                  "_selected_action": [shipped.pk]})
    client.post("/admin/points/mallredemption/", {"action": "cancel",
                                                  "_selected_action": [dropped.pk, shipped.pk]})

    with tenant_scope(tenant):
        bag = MallItem.objects.get(name="帆布袋")
        statuses = dict(MallRedemption.objects.values_list("id", "status"))
        assert AuditEntry.objects.filter(action="mall.item_create", target_id=bag.pk).exists()
    assert (bag.points, bag.stock) == (80, 30)
    assert statuses == {shipped.pk: "fulfilled", dropped.pk: "cancelled"}
    assert (balance(funded), stock(gift)) == (900, (9, 1))
    books_balance(tenant)


def test_an_analyst_reads_the_mall_in_the_admin_but_changes_nothing(tenant, actor, funded,
                                                                     gift):
    analyst = StaffFactory(tenant=tenant, role=Role.ANALYST)
    client = Client()
    client.force_login(analyst.user)
    with tenant_scope(tenant):
        redemption = mall_redeem(actor=actor, member=funded, item=gift,
                                 address=ADDRESS).redemption
    before = mall_state(tenant)

    assert client.get("/admin/points/mallitem/").status_code == 200
    assert client.get("/admin/points/mallitem/add/").status_code == 403
    assert client.post(f"/admin/points/mallitem/{gift.pk}/change/",
                       {"name": "x"}).status_code == 403
    page = client.get(f"/admin/points/mallredemption/{redemption.pk}/change/")
    assert page.status_code == 200
    assert "13800001234" not in page.content.decode()  # the recipient's phone
    client.post("/admin/points/mallredemption/", {"action": "cancel",
                                                  "_selected_action": [redemption.pk]})
    assert mall_state(tenant) == before
