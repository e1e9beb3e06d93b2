"""The member fields an audience can be selected on, as the index and SQL both see them.

Every field has one ORM path (for SQL) and one way to turn a database value into the index's
integer or string form, so the bitmap answer and the SQL answer agree by construction."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CATEGORY = "category"
NUMBER = "number"
BOOLEAN = "boolean"

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    path: str  # ORM lookup path from Member
    sql: str  # SQL expression over members_member m / members_memberstats s (for rebuilds)
    temporal: str = ""  # "datetime" or "date": numbers are epoch seconds / ordinal days
    # The number a member without a value counts as (a member with no points account has a
    # balance of 0); None: such a member matches no range.
    null_as: int | None = None


FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("gender", CATEGORY, "gender", "m.gender"),
        Field("province", CATEGORY, "province", "m.province"),
        Field("city", CATEGORY, "city", "m.city"),
        Field("source_channel", CATEGORY, "source_channel", "m.source_channel"),
        Field("store", CATEGORY, "store_id", "m.store_id"),
        Field("guide", CATEGORY, "guide_id", "m.guide_id"),
        Field("birth_month", CATEGORY, "birthday__month", "EXTRACT(MONTH FROM m.birthday)::int"),
        Field("marketing_consent", BOOLEAN, "marketing_consent", "m.marketing_consent"),
        Field("total_spent_fen", NUMBER, "stats__total_spent_fen", "s.total_spent_fen"),
        Field("order_count", NUMBER, "stats__order_count", "s.order_count"),
        Field("refunded_fen", NUMBER, "stats__refunded_fen", "s.refunded_fen"),
        Field("last_order_at", NUMBER, "stats__last_order_at",
              "floor(EXTRACT(EPOCH FROM s.last_order_at))::bigint", temporal="datetime"),
        Field("first_order_at", NUMBER, "stats__first_order_at",
              "floor(EXTRACT(EPOCH FROM s.first_order_at))::bigint", temporal="datetime"),
        Field("created_at", NUMBER, "created_at", "floor(EXTRACT(EPOCH FROM m.created_at))::bigint",
              temporal="datetime"),
        Field("birthday", NUMBER, "birthday", "(m.birthday - DATE '0001-01-01') + 1",
              temporal="date"),
    )
}

# Fields defined in terms of others and of "now": rewritten before evaluation.
DERIVED = {
    "age": "birthday",
    "last_order_days": "last_order_at",
    "first_order_days": "first_order_at",
    "member_days": "created_at",
}

# Leaves that name one value of a dimension: {"store": 3} is {"field": "store", "op": "eq"...}.
DIMENSION_LEAVES = {"store": "store", "guide": "guide"}


# Leaves that later apps define in terms of the others: {"tier": "gold"} becomes the level's
# system tag.  A resolver takes the leaf's value and returns an expression (JSON), or raises
# ValueError with a message for the user.
LEAF_RESOLVERS: dict[str, Callable[[Any], dict]] = {}


def register_field(field: Field, *, leaf: str | None = None) -> None:
    """Later apps (loyalty tiers, RFM, lifecycle) add their dimensions here at start-up."""
    FIELDS[field.name] = field
    if leaf:
        DIMENSION_LEAVES[leaf] = field.name


def register_leaf(name: str, resolver: Callable[[Any], dict]) -> None:
    LEAF_RESOLVERS[name] = resolver


def to_index_number(field: Field, value) -> int | None:
    if value is None:
        return field.null_as
    if field.temporal == "datetime":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int((value - EPOCH).total_seconds())
    if field.temporal == "date":
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        return value.toordinal()
    return int(value)


def to_index_category(field: Field, value) -> str | None:
    if value is None or value == "":
        return None
    if field.kind == BOOLEAN:
        return "1" if value in (True, "1", 1, "true") else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
