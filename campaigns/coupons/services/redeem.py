"""Redeeming (核销) and cancelling (作废) coupons.

A redemption checks the coupon against the order (or the checkout, before an order exists)
and then marks it redeemed with one conditional update from ``issued`` inside its validity
window: of two cashiers scanning one code at once, one wins and the other is told it was
used."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.coupons import signals
from campaigns.coupons.codes import code_normalize
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services.common import (
    TIMELINE_REDEEMED,
    conflict,
    invalid,
    not_found,
    unique,
)
from members.models import Member, Order
from members.services import timeline_add
from scrm.access import Actor
from scrm.audit import audit_record
from scrm.events import event_record
from scrm.models import Store
from tags.models import Product


@dataclass(frozen=True)
class Basket:
    """What a coupon is checked against: an order, or a checkout before the order exists."""

    amount_fen: int
    store_code: str | None
    skus: frozenset[str]
    categories: frozenset[str]
    order: Order | None = None


def discount_for(*, template: CouponTemplate, amount_fen: int) -> int:
    """Fixed: the amount, at most the order's; percentage: rounded down, at most the cap;
    gift: nothing off the price."""
    if template.kind == CouponTemplate.Kind.FIXED:
        return min(template.amount_fen, amount_fen)
    if template.kind == CouponTemplate.Kind.PERCENT:
        discount = amount_fen * template.percent_off // 100
        return min(discount, template.max_discount_fen) if template.max_discount_fen else discount
    return 0


def coupon_get(*, code: str) -> Coupon:
    coupon = unique(Coupon.objects.select_related("template").filter(code=code_normalize(code)))
    if coupon is None:
        raise not_found()
    return coupon


def coupon_redeem(*, actor: Actor, code: str, order: Order | None = None,
                  order_amount_fen: int | None = None, store_code: str | None = None,
                  skus: Iterable[str] = ()) -> Coupon:
    """Redeem the coupon ``code`` on ``order`` (its amount, store and products), or at a
    checkout of ``order_amount_fen`` at ``store_code`` with ``skus`` (the actor's own store
    when a store manager or guide gives none).  Refused (409), with nothing written:
    ``coupon_used``, ``coupon_expired``, ``coupon_cancelled``, ``coupon_not_started``,
    ``not_members_coupon`` (the order is someone else's), ``store_not_allowed``,
    ``threshold_not_met``, ``product_not_allowed``; 404 for a code the tenant never issued.
    The discount is computed on the order's amount."""
    with transaction.atomic():
        coupon = coupon_get(code=code)
        basket = (_order_basket(order) if order is not None
                  else _checkout_basket(actor=actor, amount_fen=order_amount_fen,
                                        store_code=store_code, skus=skus))
        now = timezone.now()
        check_usable(coupon=coupon, now=now)
        if order is not None and order.member_id != coupon.member_id:
            raise conflict("not_members_coupon", _("这张券不属于该订单的会员。"))
        _check_basket(template=coupon.template, basket=basket)
        discount = discount_for(template=coupon.template, amount_fen=basket.amount_fen)
        redeemed = Coupon.objects.filter(
            pk=coupon.pk, status=Coupon.Status.ISSUED, valid_from__lte=now, valid_until__gt=now,
        ).update(status=Coupon.Status.REDEEMED, redeemed_at=now, redeemed_order=basket.order,
                 order_amount_fen=basket.amount_fen, discount_fen=discount,
                 redeemed_store=basket.store_code or "", redeemed_by=actor.label[:64])
        if not redeemed:  # redeemed, cancelled or expired since it was read
            check_usable(coupon=Coupon.objects.get(pk=coupon.pk), now=now)
            raise conflict("coupon_used", _("这张券已使用。"))
        coupon.status, coupon.redeemed_at, coupon.redeemed_order = (
            Coupon.Status.REDEEMED, now, basket.order)
        coupon.order_amount_fen, coupon.discount_fen = basket.amount_fen, discount
        coupon.redeemed_store, coupon.redeemed_by = basket.store_code or "", actor.label[:64]
        _record(actor=actor, coupon=coupon, now=now)
    return coupon


def _order_basket(order: Order) -> Basket:
    lines = list(order.lines.values_list("sku", "category"))
    store = Store.objects.filter(pk=order.store_id).values_list("code", flat=True).first()
    return Basket(amount_fen=order.amount_fen, store_code=store,
                  skus=frozenset(sku for sku, _category in lines),
                  categories=frozenset(category for _sku, category in lines if category),
                  order=order)


def _checkout_basket(*, actor: Actor, amount_fen: int | None, store_code: str | None,
                     skus: Iterable[str]) -> Basket:
    if (not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen < 0):
        raise invalid({"order_amount_fen": [_("没有订单时须提供订单金额（分，非负整数）。")]})
    skus = frozenset(skus)
    if store_code is None and actor.membership is not None and actor.membership.store_id:
        store_code = actor.membership.store.code
    # The products' categories, as the catalogue knows them.
    categories = frozenset(Product.objects.filter(sku__in=skus).exclude(category="")
                           .values_list("category", flat=True)) if skus else frozenset()
    return Basket(amount_fen=amount_fen, store_code=store_code, skus=skus,
                  categories=categories)


def check_usable(*, coupon: Coupon, now: datetime) -> None:
    """409 unless ``coupon`` can be redeemed now."""
    if coupon.status == Coupon.Status.REDEEMED:
        raise conflict("coupon_used", _("这张券已使用。"))
    if coupon.status == Coupon.Status.CANCELLED:
        raise conflict("coupon_cancelled", _("这张券已作废。"))
    if coupon.status == Coupon.Status.EXPIRED or now >= coupon.valid_until:
        raise conflict("coupon_expired", _("这张券已过期。"))
    if now < coupon.valid_from:
        raise conflict("coupon_not_started", _("这张券尚未生效。"))


def _check_basket(*, template: CouponTemplate, basket: Basket) -> None:
    if template.stores and basket.store_code not in template.stores:
        raise conflict("store_not_allowed", _("这张券不能在该门店使用。"))
    if basket.amount_fen < template.threshold_fen:
        raise conflict("threshold_not_met", _("订单金额未满 %(yuan)s 元，不能使用这张券。")
                       % {"yuan": f"{template.threshold_fen / 100:g}"})
    if (template.skus or template.categories) and not (
            basket.skus & set(template.skus) or basket.categories & set(template.categories)):
        raise conflict("product_not_allowed", _("订单中没有这张券适用的商品。"))


def _record(*, actor: Actor, coupon: Coupon, now: datetime) -> None:
    template = coupon.template
    timeline_add(member=Member(pk=coupon.member_id, tenant_id=coupon.tenant_id),
                 kind=TIMELINE_REDEEMED, actor=actor.label[:64], occurred_at=now,
                 data={"coupon": coupon.pk, "template": template.code, "name": template.name,
                       "discount_fen": coupon.discount_fen,
                       "order": coupon.redeemed_order_id,
                       "order_amount_fen": coupon.order_amount_fen,
                       "store": coupon.redeemed_store})
    tenant_id, coupon_id, order_id = coupon.tenant_id, coupon.pk, coupon.redeemed_order_id
    event_record(tenant_id=tenant_id, type="coupon.redeemed", occurred_at=now,
                 data={"coupon_id": coupon_id, "member_id": coupon.member_id,
                       "order_id": order_id})
    transaction.on_commit(lambda: signals.coupon_redeemed.send(
        sender=Coupon, tenant_id=tenant_id, coupon_id=coupon_id, order_id=order_id))


@transaction.atomic
def coupon_cancel(*, actor: Actor, coupon: Coupon, reason: str) -> Coupon:
    """Void a coupon not used yet (issued by mistake, a refunded campaign).  Its stock is not
    given back; the member may be issued another within their limit."""
    if not reason.strip():
        raise invalid({"reason": [_("必填。")]}, code="reason_required")
    now = timezone.now()
    cancelled = Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.ISSUED).update(
        status=Coupon.Status.CANCELLED, cancelled_at=now, cancel_reason=reason[:255])
    if not cancelled:
        check_usable(coupon=Coupon.objects.get(pk=coupon.pk), now=now)
    coupon.refresh_from_db()
    audit_record(actor=actor, action="coupons.coupon_cancel", target=coupon,
                 data={"code": coupon.code, "reason": reason})
    return coupon
