"""Reads for the guide's phone view: their customers by quick filter, today's birthdays and
customers to wake, and their performance with their rank in the store.  Everything starts
from ``member_visible``, so a guide only ever counts their own customers."""

import datetime as dt

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from members.identities import normalize_identity
from members.models import Member, Order
from members.selectors import member_visible
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.models import Role, StaffMembership

QUICK_FILTERS = ("birthday", "dormant", "high_value", "new")
DORMANT_DAYS = 90
NEW_DAYS = 7
HIGH_VALUE_SHOWN = 50


def birthday_q(today: dt.date, days: int = 7) -> Q:
    """Members whose birthday falls in the ``days`` days from ``today``."""
    condition = Q()
    for offset in range(days):
        day = today + dt.timedelta(days=offset)
        condition |= Q(birthday__month=day.month, birthday__day=day.day)
    return condition


def _search(queryset: QuerySet[Member], text: str) -> QuerySet[Member]:
    digits = text.replace(" ", "").replace("-", "")
    if digits.lstrip("+").isdigit() and len(digits) >= 7:
        try:
            identity = normalize_identity("phone", digits)
        except ApplicationError:
            return queryset.none()
        return queryset.filter(identities__kind=identity.kind, identities__value=identity.value)
    return queryset.filter(name__icontains=text)


def customers(*, actor: Actor, quick: str = "", search: str = "",
              now: dt.datetime | None = None) -> QuerySet[Member]:
    """The actor's customers with their spend and last order, by quick filter: ``birthday``
    (this week), ``dormant`` (no order in 90 days), ``high_value`` (top spend), ``new``
    (joined in the last 7 days)."""
    now = now or timezone.now()
    queryset = member_visible(actor=actor).filter(status=Member.Status.ACTIVE).annotate(
        spent_fen=F("stats__total_spent_fen"), last_order_at=F("stats__last_order_at"),
        order_count=F("stats__order_count"))
    if search:
        queryset = _search(queryset, search.strip())
    if quick == "birthday":
        return queryset.filter(birthday_q(timezone.localdate(now))).order_by(
            "birthday__month", "birthday__day", "id")
    if quick == "dormant":
        return queryset.filter(stats__last_order_at__lt=now - dt.timedelta(days=DORMANT_DAYS)
                               ).order_by("-stats__total_spent_fen", "id")
    if quick == "high_value":
        return queryset.filter(stats__total_spent_fen__gt=0).order_by(
            "-stats__total_spent_fen", "id")[:HIGH_VALUE_SHOWN]
    if quick == "new":
        return queryset.filter(created_at__gte=now - dt.timedelta(days=NEW_DAYS)).order_by(
            "-created_at", "-id")
    return queryset.order_by("-id")


def guide_performance(*, actor: Actor, days: int, now: dt.datetime | None = None) -> dict:
    """A guide's new customers, first-order conversions and the sales of their customers
    over the last ``days`` days, and their rank by sales among their store's guides."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    mine = member_visible(actor=actor).filter(status=Member.Status.ACTIVE)
    new_customers = mine.filter(created_at__gte=since).count()
    converted = mine.filter(stats__first_order_at__gte=since).count()
    net = Sum(F("amount_fen") - F("refunded_fen"))
    sales = Order.objects.filter(member__guide_id=actor.guide_id, paid_at__gte=since).aggregate(
        amount=net, orders=Count("id"))
    guides = StaffMembership.objects.filter(
        tenant_id=actor.tenant.pk, store_id=actor.membership.store_id, role=Role.GUIDE,
        is_active=True)
    by_guide = dict(Order.objects.filter(
        member__guide_id__in=guides.values("pk"), paid_at__gte=since)
        .values_list("member__guide_id").annotate(amount=net).values_list(
            "member__guide_id", "amount"))
    board = sorted(((by_guide.get(guide.pk, 0) or 0, guide) for guide in guides),
                   key=lambda row: (-row[0], row[1].pk))
    rank = next((i for i, (_amount, guide) in enumerate(board, 1) if guide.pk == actor.guide_id),
                None)
    return {"days": days, "new_customers": new_customers, "converted": converted,
            "sales_fen": sales["amount"] or 0, "orders": sales["orders"],
            "customers": mine.count(), "rank": rank, "guides_in_store": len(board),
            "board": [{"name": str(guide), "sales_fen": amount, "me": guide.pk == actor.guide_id}
                      for amount, guide in board[:10]]}
