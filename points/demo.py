"""The demo tenant's loyalty programme: a points policy, tiers, opening balances for the
members who bought, the levels they qualify for, and a points mall with a flash sale."""

from datetime import timedelta

from django.db.models import F, Sum
from django.utils import timezone

from members.models import Member, Order
from points.models import MallItem, PointsPolicy, TierProgram
from points.services import points_earn
from points.services.mall import flash_sale_create, mall_item_create
from points.services.policy import policy_get
from points.services.tiers import tier_program_save
from scrm.access import ALL_SCOPES, Actor
from scrm.models import Tenant

LEVELS = [
    {"code": "silver", "name": "银卡会员", "threshold": 0},
    {"code": "gold", "name": "金卡会员", "threshold": 200_000, "points_multiplier": "1.20",
     "discount_percent": 98},
    {"code": "platinum", "name": "铂金会员", "threshold": 500_000, "points_multiplier": "1.50",
     "discount_percent": 95, "free_shipping": True, "birthday_points": 500},
    {"code": "diamond", "name": "黑钻会员", "threshold": 1_200_000, "points_multiplier": "2.00",
     "discount_percent": 90, "free_shipping": True, "birthday_points": 1000,
     "priority_service": True, "lottery_weight": 3},
]
ITEMS = [
    ("满 200 减 30 优惠券", MallItem.Kind.COUPON, 300, 0, 5000),
    ("精华液旅行装 10ml", MallItem.Kind.GIFT, 1200, 0, 300),
    ("限量化妆包", MallItem.Kind.GIFT, 2500, 0, 120),
    ("明星面霜 50ml（积分+现金）", MallItem.Kind.POINTS_CASH, 3000, 19900, 200),
]


def loyalty_demo_seed(*, tenant: Tenant) -> None:
    """Inside the demo tenant's scope, after its members and orders exist."""
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    policy_get()
    PointsPolicy.objects.update(birthday_points=100, signup_points=50, checkin_points=5,
                                members_days=["18"], members_day_multiplier=2)
    tier_program_save(actor=actor, changes={
        "name": "兰亭会员", "basis": TierProgram.Basis.SPEND, "window_days": 365,
        "review_days": 365, "protection_days": 90}, levels=LEVELS)
    spent = (Order.objects.values("member_id")
             .annotate(net=Sum(F("amount_fen") - F("refunded_fen"))).filter(net__gt=0))
    members = {m.pk: m for m in Member.objects.filter(status=Member.Status.ACTIVE)}
    expires_at = timezone.now() + timedelta(days=540)
    for row in spent.order_by("member_id"):
        member = members.get(row["member_id"])
        if member is not None:
            points_earn(actor=actor, member=member, points=row["net"] // 100,
                        reason="历史消费积分（期初）", expires_at=expires_at,
                        idempotency_key=f"demo:opening:{member.pk}")
    # The programme's own sweep (queued when it was saved) gives everyone their level.
    now = timezone.now()
    items = [mall_item_create(actor=actor, name=name, kind=kind, points=points, cash_fen=cash,
                              stock=stock, per_member_limit=2, sort_order=index)
             for index, (name, kind, points, cash, stock) in enumerate(ITEMS)]
    flash_sale_create(actor=actor, item=items[2], starts_at=now + timedelta(days=1),
                      ends_at=now + timedelta(days=1, hours=2), points=1500, stock=50,
                      name="限量化妆包积分秒杀")

