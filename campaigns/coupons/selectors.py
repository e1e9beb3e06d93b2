"""Reads of coupons: templates, the coupons the actor may see, and a template's results."""

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from campaigns.coupons.codes import code_normalize
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services.common import unique
from members.models import Order
from members.selectors import member_visible
from scrm.access import Actor


def coupon_template_list(*, filters: dict[str, Any] | None = None) -> QuerySet[CouponTemplate]:
    filters = filters or {}
    templates = CouponTemplate.objects.all()
    if filters.get("kind"):
        templates = templates.filter(kind=filters["kind"])
    if filters.get("is_active") is not None:
        templates = templates.filter(is_active=filters["is_active"])
    return templates


def coupon_template_find(*, ref: int | str) -> CouponTemplate | None:
    """A template by id (a number) or code (a string)."""
    if isinstance(ref, int):
        return CouponTemplate.objects.filter(pk=ref).first()
    return CouponTemplate.objects.filter(code=ref).first()


def coupon_list(*, actor: Actor, filters: dict[str, Any] | None = None) -> QuerySet[Coupon]:
    """The coupons of the members this actor may see (a guide their own customers, a store
    manager their store's), with their templates; ``template`` filters by id or code."""
    filters = filters or {}
    coupons = Coupon.objects.select_related("template")
    if actor.guide_id is not None or actor.store_id is not None:
        coupons = coupons.filter(member__in=member_visible(actor=actor))
    for name in ("member", "status"):
        if filters.get(name) is not None:
            coupons = coupons.filter(**{name: filters[name]})
    if filters.get("template") is not None:
        ref = str(filters["template"])
        by = Q(template__code=ref) | Q(template_id=int(ref)) if ref.isdigit() else Q(
            template__code=ref)
        coupons = coupons.filter(by)
    return coupons


def coupon_visible(*, actor: Actor, code: str) -> Coupon | None:
    return unique(coupon_list(actor=actor).filter(code=code_normalize(code)))


def coupon_template_stats(*, template: CouponTemplate) -> dict[str, Any]:
    """Issued, redeemed, expired and cancelled coupons, the redemption rate, the discount
    given, and the orders that used them with their amount (GMV): each order once however
    many of the template's coupons it used, and a checkout redeemed before its order
    existed as one order of the amount it declared."""
    coupons = Coupon.objects.filter(template_id=template.pk)
    counts = coupons.aggregate(
        issued=Count("id"),
        redeemed=Count("id", filter=Q(status=Coupon.Status.REDEEMED)),
        expired=Count("id", filter=Q(status=Coupon.Status.EXPIRED)),
        cancelled=Count("id", filter=Q(status=Coupon.Status.CANCELLED)),
        discount_fen=Sum("discount_fen", filter=Q(status=Coupon.Status.REDEEMED)),
        checkouts=Count("id", filter=Q(status=Coupon.Status.REDEEMED,
                                       redeemed_order__isnull=True)),
        checkout_fen=Sum("order_amount_fen", filter=Q(status=Coupon.Status.REDEEMED,
                                                      redeemed_order__isnull=True)),
    )
    orders = Order.objects.filter(pk__in=coupons.filter(
        status=Coupon.Status.REDEEMED, redeemed_order__isnull=False).values("redeemed_order_id")
    ).aggregate(orders=Count("id"), gmv_fen=Sum("amount_fen"))
    issued, redeemed = counts["issued"], counts["redeemed"]
    return {
        "issued": issued,
        "redeemed": redeemed,
        "expired": counts["expired"],
        "cancelled": counts["cancelled"],
        "unused": issued - redeemed - counts["expired"] - counts["cancelled"],
        "redemption_rate": round(redeemed / issued, 4) if issued else 0.0,
        "discount_fen": counts["discount_fen"] or 0,
        "orders": orders["orders"] + counts["checkouts"],
        "gmv_fen": (orders["gmv_fen"] or 0) + (counts["checkout_fen"] or 0),
        "stock_left": template.stock_left,
    }


def coupon_templates_summary(*, template_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Issued and redeemed coupons and the discount given of several templates in one
    grouped pass (the list of templates; one template's full results are
    ``coupon_template_stats``)."""
    rows = Coupon.objects.filter(template_id__in=template_ids).values("template_id").annotate(
        issued=Count("id"), redeemed=Count("id", filter=Q(status=Coupon.Status.REDEEMED)),
        discount_fen=Sum("discount_fen", filter=Q(status=Coupon.Status.REDEEMED)))
    summary = {pk: {"issued": 0, "redeemed": 0, "discount_fen": 0, "redemption_rate": 0.0}
               for pk in template_ids}
    for row in rows:
        issued, redeemed = row["issued"], row["redeemed"]
        summary[row["template_id"]] = {
            "issued": issued, "redeemed": redeemed, "discount_fen": row["discount_fen"] or 0,
            "redemption_rate": round(redeemed / issued, 4) if issued else 0.0}
    return summary
