"""Redeeming a coupon: each kind's discount, the validity window, threshold, store, product
and owner checks; every refusal is a 409 that changes nothing."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.coupons import signals
from campaigns.coupons.models import Coupon
from campaigns.coupons.services import (
    coupon_cancel,
    coupon_redeem,
    coupons_expire,
    discount_for,
)
from members.models import Member, TimelineEvent
from members.services import order_ingest
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tags.models import Product
from tests.coupons.conftest import coupon_state, days, fresh, issue, template_create
from tests.factories import StoreFactory
from tests.points.conftest import new_member

_orders = itertools.count(1)


def order_for(actor, phone: str, amount_fen: int, *, store: str | None = "SH001",
              lines: tuple[tuple[str, str], ...] = (("SK-30", "护肤"),)):
    data = {"order_no": f"T{next(_orders)}", "channel": "tmall",
            "paid_at": timezone.now(), "amount_fen": amount_fen,
            "buyer": {"identities": [{"kind": "phone", "value": phone}]},
            "lines": [{"sku": sku, "product": sku, "category": category, "quantity": 1,
                       "price_fen": amount_fen // len(lines)} for sku, category in lines]}
    if store:
        data["store"] = store
    with tenant_scope(actor.tenant):
        order, _created = order_ingest(actor=actor, data=data)
    return order


@pytest.fixture
def buyer_order(actor, store):
    """A ¥150 order at SH001 for 精华液 (护肤), and its buyer."""
    order = order_for(actor, "13900000001", 15000)
    with tenant_scope(actor.tenant):
        return order, Member.objects.get(pk=order.member_id)


def redeem(actor, code: str, **basket) -> Coupon:
    with tenant_scope(actor.tenant):
        return coupon_redeem(actor=actor, code=code, **basket)


def refused(actor, code: str, **basket) -> tuple[int, str]:
    with pytest.raises(ApplicationError) as caught:
        redeem(actor, code, **basket)
    return caught.value.status_code, caught.value.code


@pytest.mark.parametrize(("fields", "amount", "discount"), [
    ({"amount_fen": 2000}, 15000, 2000),
    ({"amount_fen": 2000, "threshold_fen": 0}, 1500, 1500),  # never more than the order
    ({"kind": "percent", "amount_fen": 0, "percent_off": 15}, 12345, 1851),  # 1851.75 down
    ({"kind": "percent", "amount_fen": 0, "percent_off": 15, "max_discount_fen": 1000},
     12345, 1000),
    ({"kind": "gift", "amount_fen": 0, "gift_name": "小样"}, 15000, 0),
])
def test_each_kind_gives_its_discount(tenant, actor, fields, amount, discount):
    template = template_create(actor, **{"threshold_fen": 0, **fields})

    assert discount_for(template=template, amount_fen=amount) == discount


def test_redeeming_on_an_order_records_the_order_and_the_discount(
        tenant, actor, buyer_order, django_capture_on_commit_callbacks):
    order, buyer = buyer_order
    coupon = issue(actor, template_create(actor, stores=["SH001"], skus=["SK-30"]), buyer)
    sent = []
    signals.coupon_redeemed.connect(receiver := lambda sender, **kw: sent.append(kw))

    with django_capture_on_commit_callbacks(execute=True):
        redeemed = redeem(actor, coupon.code.lower(), order=order)  # as typed
    signals.coupon_redeemed.disconnect(receiver)

    assert (redeemed.status, redeemed.redeemed_order_id, redeemed.order_amount_fen,
            redeemed.discount_fen, redeemed.redeemed_store, redeemed.redeemed_by) == (
        "redeemed", order.pk, 15000, 2000, "SH001", "system")
    assert sent == [{"signal": signals.coupon_redeemed, "tenant_id": tenant.pk,
                     "coupon_id": coupon.pk, "order_id": order.pk}]
    with tenant_scope(tenant):
        event = TimelineEvent.objects.get(member=buyer, kind="coupon.redeemed")
    assert event.data == {"coupon": coupon.pk, "template": "c100-20", "name": "满 100 减 20",
                          "discount_fen": 2000, "order": order.pk, "order_amount_fen": 15000,
                          "store": "SH001"}


def test_a_checkout_before_the_order_exists_is_checked_against_the_catalogue(
        tenant, actor, member, store):
    with tenant_scope(tenant):
        Product.objects.create(tenant=tenant, sku="SK-50", name="面霜", category="护肤")
    template = template_create(actor, stores=["SH001"], categories=["护肤"])
    coupon = issue(actor, template, member)
    before = coupon_state(tenant)

    assert refused(actor, coupon.code, order_amount_fen=15000, store_code="SH001",
                   skus=["SK-99"]) == (409, "product_not_allowed")
    assert refused(actor, coupon.code, order_amount_fen=15000, store_code="BJ001",
                   skus=["SK-50"]) == (409, "store_not_allowed")
    assert refused(actor, coupon.code, order_amount_fen=9999, store_code="SH001",
                   skus=["SK-50"]) == (409, "threshold_not_met")
    assert coupon_state(tenant) == before

    redeemed = redeem(actor, coupon.code, order_amount_fen=10000, store_code="SH001",
                      skus=["SK-50"])
    assert (redeemed.redeemed_order_id, redeemed.order_amount_fen, redeemed.discount_fen) == (
        None, 10000, 2000)


def test_another_member_s_order_is_refused(tenant, actor, member, buyer_order):
    order, _buyer = buyer_order
    coupon = issue(actor, template_create(actor), member)
    before = coupon_state(tenant)

    assert refused(actor, coupon.code, order=order) == (409, "not_members_coupon")
    assert coupon_state(tenant) == before


def test_the_order_s_store_and_products_decide(tenant, actor, buyer_order):
    order, buyer = buyer_order
    with tenant_scope(tenant):
        StoreFactory(tenant=tenant, code="BJ001")
    elsewhere = issue(actor, template_create(actor, code="bj", stores=["BJ001"]), buyer)
    other_products = issue(actor, template_create(actor, code="mk", skus=["MK-1"],
                                                  categories=["彩妆"]), buyer)
    too_small = issue(actor, template_create(actor, code="big", threshold_fen=15001), buyer)
    before = coupon_state(tenant)

    assert refused(actor, elsewhere.code, order=order) == (409, "store_not_allowed")
    assert refused(actor, other_products.code, order=order) == (409, "product_not_allowed")
    assert refused(actor, too_small.code, order=order) == (409, "threshold_not_met")
    assert coupon_state(tenant) == before


def test_a_coupon_is_used_once(tenant, actor, member):
    coupon = issue(actor, template_create(actor), member)
    redeem(actor, coupon.code, order_amount_fen=20000)
    before = coupon_state(tenant)

    assert refused(actor, coupon.code, order_amount_fen=20000) == (409, "coupon_used")
    assert coupon_state(tenant) == before


def test_the_validity_window_decides(tenant, actor, member, other_member):
    not_yet = issue(actor, template_create(actor, code="later", validity="absolute",
                                           valid_days=0, valid_from=days(1),
                                           valid_until=days(2)), member)
    lapsed = issue(actor, template_create(actor, code="lapsed"), member)
    with tenant_scope(tenant):
        Coupon.objects.filter(pk=lapsed.pk).update(
            valid_from=lapsed.valid_from - timedelta(days=60),
            valid_until=lapsed.valid_from - timedelta(days=30))
    swept = issue(actor, template_create(actor, code="swept"), other_member)
    with tenant_scope(tenant):
        Coupon.objects.filter(pk=swept.pk).update(valid_until=swept.valid_from + timedelta(
            microseconds=1))
        assert coupons_expire() == 2
    voided = issue(actor, template_create(actor, code="void"), member)
    with tenant_scope(tenant):
        coupon_cancel(actor=actor, coupon=voided, reason="发错了")
    before = coupon_state(tenant)

    assert refused(actor, not_yet.code, order_amount_fen=20000) == (409, "coupon_not_started")
    assert refused(actor, lapsed.code, order_amount_fen=20000) == (409, "coupon_expired")
    assert refused(actor, swept.code, order_amount_fen=20000) == (409, "coupon_expired")
    assert refused(actor, voided.code, order_amount_fen=20000) == (409, "coupon_cancelled")
    assert coupon_state(tenant) == before
    assert (fresh(lapsed).status, fresh(swept).status) == ("expired", "expired")


def test_unknown_and_other_tenants_codes_are_404(tenant, other_tenant, actor, member):
    theirs_actor = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    theirs = issue(theirs_actor, template_create(theirs_actor), new_member(theirs_actor))
    before = coupon_state(other_tenant)

    assert refused(actor, theirs.code, order_amount_fen=20000) == (404, "not_found")
    assert refused(actor, "ABCDEFGHJKMN", order_amount_fen=20000) == (404, "not_found")
    assert coupon_state(other_tenant) == before


def test_a_checkout_needs_its_amount(tenant, actor, member):
    coupon = issue(actor, template_create(actor), member)
    before = coupon_state(tenant)

    assert refused(actor, coupon.code) == (400, "validation_error")
    assert refused(actor, coupon.code, order_amount_fen=-1) == (400, "validation_error")
    assert coupon_state(tenant) == before


def test_cancelling_a_used_coupon_is_refused(tenant, actor, member):
    coupon = issue(actor, template_create(actor), member)
    redeem(actor, coupon.code, order_amount_fen=20000)
    before = coupon_state(tenant)

    with tenant_scope(tenant), pytest.raises(ApplicationError) as caught:
        coupon_cancel(actor=actor, coupon=coupon, reason="撤销")

    assert (caught.value.status_code, caught.value.code) == (409, "coupon_used")
    assert coupon_state(tenant) == before
