"""Audience expressions as plain SQL (a Django ``Q`` over Member): the reference the index is
tested against, and the exact answer for members changed since the index was folded."""

import datetime as dt

from django.db.models import Exists, FilteredRelation, OuterRef, Q, QuerySet

from scrm.tenancy import require_tenant_id
from tags.audience import expressions as E
from tags.audience import fields as F


def _from_index_number(field: F.Field, number: int):
    if field.temporal == "datetime":
        return F.EPOCH + dt.timedelta(seconds=number)
    if field.temporal == "date":
        return dt.date.fromordinal(max(1, min(number, dt.date.max.toordinal())))
    return number


def _from_index_category(field: F.Field, value: str):
    if field.kind == F.BOOLEAN:
        return value == "1"
    if field.name in ("store", "guide", "birth_month"):
        return int(value)
    return value


STATS = "stats__"


def to_q(node, *, stats: str = "stats") -> Q:
    """``node`` as a Q over Member; ``stats`` names the relation the member stats are read
    through (a ``FilteredRelation`` alias of ``stats`` the caller annotates, see
    ``with_tenant_stats``)."""
    from tags.models import MemberTag

    if isinstance(node, E.All):
        q = Q()
        for child in node.children:
            q &= to_q(child, stats=stats)
        return q
    if isinstance(node, E.Any):
        q = to_q(node.children[0], stats=stats)
        for child in node.children[1:]:
            q |= to_q(child, stats=stats)
        return q
    if isinstance(node, E.Not):
        return ~to_q(node.child, stats=stats)
    if isinstance(node, E.HasTag):
        return Q(Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag_id=node.tag_id)))
    field = F.FIELDS[node.field]
    path = f"{stats}__{field.path[len(STATS):]}" if field.path.startswith(STATS) else field.path
    if isinstance(node, E.Match):
        values = [_from_index_category(field, value) for value in node.values]
        return Q(**{f"{path}__in": values})
    return _range_q(field, path, node)


def with_tenant_stats(queryset: QuerySet) -> QuerySet:
    """Members with their stats joined on (tenant, member) as ``tenant_stats``, for
    ``to_q(node, stats="tenant_stats")``: with the tenant in the join PostgreSQL finds each
    member's stats by index; joined on the member alone (row-level security's tenant check is
    an OR no index serves) it reads every stats row of the tenant."""
    return queryset.annotate(tenant_stats=FilteredRelation(
        "stats", condition=Q(stats__tenant_id=require_tenant_id())))


def _range_q(field: F.Field, path: str, node: E.Range) -> Q:
    q = Q(**{f"{path}__isnull": False})
    if node.low is not None:
        q &= Q(**{f"{path}__gte": _from_index_number(field, node.low)})
    if node.high is not None:
        if field.temporal == "datetime":
            # The index floors datetimes to whole seconds: floor(t) <= high <=> t < high + 1.
            q &= Q(**{f"{path}__lt": _from_index_number(field, node.high + 1)})
        else:
            q &= Q(**{f"{path}__lte": _from_index_number(field, node.high)})
    if field.null_as is not None and (node.low is None or node.low <= field.null_as) and (
            node.high is None or field.null_as <= node.high):
        q |= Q(**{f"{path}__isnull": True})
    return q
