"""Reads for the guide's phone view: their customers by quick filter, today's birthdays and
customers to wake, and their performance with their rank in the store.  Everything starts
from ``member_visible``, so a guide only ever counts their own customers."""

import datetime as dt

from django.db.models import Count, F, FilteredRelation, Q, QuerySet, Sum
from django.utils import timezone

from members.identities import normalize_identity
from members.models import Member
from members.selectors import member_visible
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.models import Role, StaffMembership
from scrm.tenancy import require_tenant_id

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


def _with_stats(queryset: QuerySet[Member]) -> QuerySet[Member]:
    """The members with their stats joined as ``own_stats`` on (tenant, member): the tenant in
    the join lets PostgreSQL look each member's stats up by index, where the join on the
    member alone (row-level security checks the tenant with an OR it cannot index) reads
    every stats row of the tenant."""
    return queryset.annotate(own_stats=FilteredRelation(
        "stats", condition=Q(stats__tenant_id=require_tenant_id())))


def customers(*, actor: Actor, quick: str = "", search: str = "",
              now: dt.datetime | None = None) -> QuerySet[Member]:
    """The actor's customers with their spend and last order, by quick filter: ``birthday``
    (this week), ``dormant`` (no order in 90 days), ``high_value`` (top spend), ``new``
    (joined in the last 7 days)."""
    now = now or timezone.now()
    queryset = _with_stats(member_visible(actor=actor).filter(status=Member.Status.ACTIVE)
                           ).annotate(spent_fen=F("own_stats__total_spent_fen"),
                                      last_order_at=F("own_stats__last_order_at"),
                                      order_count=F("own_stats__order_count"))
    if search:
        queryset = _search(queryset, search.strip())
    if quick == "birthday":
        return queryset.filter(birthday_q(timezone.localdate(now))).order_by(
            "birthday__month", "birthday__day", "id")
    if quick == "dormant":
        return queryset.filter(last_order_at__lt=now - dt.timedelta(days=DORMANT_DAYS)
                               ).order_by("-spent_fen", "id")
    if quick == "high_value":
        return queryset.filter(spent_fen__gt=0).order_by("-spent_fen", "id")[:HIGH_VALUE_SHOWN]
    if quick == "new":
        return queryset.filter(created_at__gte=now - dt.timedelta(days=NEW_DAYS)).order_by(
            "-created_at", "-id")
    return queryset.order_by("-id")


def _guides_sales(*, guide_ids: set[int], since: dt.datetime) -> dict[int, dict]:
    """The net sales and order count of each guide's customers since ``since``, in one query
    from the member side: the guides' customers through the (tenant, guide, id) index, and
    their orders joined on (tenant, member, paid_at), an index that carries the amounts, so
    no order row is read however many orders the tenant has."""
    sold = FilteredRelation("orders", condition=Q(orders__tenant_id=require_tenant_id(),
                                                  orders__paid_at__gte=since))
    rows = (Member.objects.filter(guide_id__in=guide_ids).annotate(sold=sold)
            .values("guide_id").annotate(
                amount=Sum(F("sold__amount_fen") - F("sold__refunded_fen")),
                orders=Count("sold__member_id"))  # a column of the index, unlike the id
            .order_by())
    found = {row["guide_id"]: row for row in rows}
    return {guide_id: {"amount": found.get(guide_id, {}).get("amount") or 0,
                       "orders": found.get(guide_id, {}).get("orders") or 0}
            for guide_id in guide_ids}


def guide_performance(*, actor: Actor, days: int, now: dt.datetime | None = None) -> dict:
    """A guide's new customers, first-order conversions and the sales of their customers
    over the last ``days`` days, and their rank by sales among their store's guides."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    mine = member_visible(actor=actor).filter(status=Member.Status.ACTIVE)
    new_customers = mine.filter(created_at__gte=since).count()
    converted = _with_stats(mine).filter(own_stats__first_order_at__gte=since).count()
    guides = list(StaffMembership.objects.filter(
        tenant_id=actor.tenant.pk, store_id=actor.membership.store_id, role=Role.GUIDE,
        is_active=True))
    by_guide = _guides_sales(guide_ids={guide.pk for guide in guides} | {actor.guide_id},
                             since=since)
    sales = by_guide[actor.guide_id]
    board = sorted(((by_guide[guide.pk]["amount"], guide) for guide in guides),
                   key=lambda row: (-row[0], row[1].pk))
    rank = next((i for i, (_amount, guide) in enumerate(board, 1) if guide.pk == actor.guide_id),
                None)
    return {"days": days, "new_customers": new_customers, "converted": converted,
            "sales_fen": sales["amount"], "orders": sales["orders"],
            "customers": mine.count(), "rank": rank, "guides_in_store": len(board),
            "board": [{"name": str(guide), "sales_fen": amount, "me": guide.pk == actor.guide_id}
                      for amount, guide in board[:10]]}
