"""What a campaign achieved: who was reached (and who was held out, had no consent or was
over the cap), coupons redeemed, orders and GMV within the attribution window after each
member's delivery, cost (coupon discounts and points at their value), ROI, and the lift over
the control group."""

from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, ExpressionWrapper, F, OuterRef, Sum
from django.db.models import DateTimeField as DateTimeFieldType

from campaigns.models import Campaign, Delivery
from members.models import Order
from points.models import PointsEntry
from points.services.policy import policy_get


def _orders_after(campaign: Campaign, status: str):
    """Orders placed by ``status`` members within the window after their delivery."""
    window = timedelta(days=campaign.attribution_days)
    delivered = Delivery.objects.filter(
        campaign=campaign, status=status, member_id=OuterRef("member_id"),
        created_at__lte=OuterRef("paid_at"),
        created_at__gt=ExpressionWrapper(OuterRef("paid_at") - window,
                                         output_field=DateTimeFieldType()))
    return Order.objects.filter(Exists(delivered))


def _buying(campaign: Campaign, status: str) -> dict[str, int]:
    totals = _orders_after(campaign, status).aggregate(
        orders=Count("pk"), buyers=Count("member_id", distinct=True),
        gmv=Sum(F("amount_fen") - F("refunded_fen")))
    return {"orders": totals["orders"], "buyers": totals["buyers"],
            "gmv_fen": int(totals["gmv"] or 0)}


def _coupon_cost(campaign: Campaign) -> dict[str, int]:
    from campaigns.coupons.models import Coupon

    coupons = Coupon.objects.filter(source="campaign", ref=str(campaign.pk))
    redeemed = coupons.filter(status="redeemed")
    return {"issued": coupons.count(), "redeemed": redeemed.count(),
            "discount_fen": int(redeemed.aggregate(d=Sum("discount_fen"))["d"] or 0)}


def _points_cost(campaign: Campaign) -> dict[str, int]:
    points = PointsEntry.objects.filter(ref_type="campaign", ref_id=str(campaign.pk)).aggregate(
        points=Sum("points"))["points"] or 0
    return {"points": int(points), "value_fen": int(points) * policy_get().point_value_fen}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def campaign_results(*, campaign: Campaign) -> dict[str, Any]:
    deliveries = dict(Delivery.objects.filter(campaign=campaign).values("status")
                      .annotate(n=Count("pk")).values_list("status", "n"))
    reached, control = deliveries.get(Delivery.Status.SENT, 0), deliveries.get(
        Delivery.Status.CONTROL, 0)
    treated, held = _buying(campaign, Delivery.Status.SENT), _buying(campaign,
                                                                      Delivery.Status.CONTROL)
    coupons, points = _coupon_cost(campaign), _points_cost(campaign)
    cost = coupons["discount_fen"] + points["value_fen"]
    conversion, control_conversion = _rate(treated["buyers"], reached), _rate(held["buyers"],
                                                                              control)
    expected = held["gmv_fen"] / control * reached if control else None
    return {
        "deliveries": deliveries, "reached": reached, "control": control,
        "attribution_days": campaign.attribution_days,
        "orders": treated["orders"], "buyers": treated["buyers"], "gmv_fen": treated["gmv_fen"],
        "conversion": conversion,
        "control_orders": held["orders"], "control_buyers": held["buyers"],
        "control_gmv_fen": held["gmv_fen"], "control_conversion": control_conversion,
        "lift": round(conversion - control_conversion, 4)
        if conversion is not None and control_conversion is not None else None,
        "incremental_gmv_fen": round(treated["gmv_fen"] - expected) if expected is not None
        else None,
        "coupons": coupons, "points": points, "cost_fen": cost,
        "roi": round(treated["gmv_fen"] / cost, 2) if cost else None,
    }

