"""The current values of members' indexed fields, read from the database into bitmaps and
arrays: what the index base is built and folded from."""

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import F as DbF
from django.db.models.functions import ExtractMonth
from pyroaring import BitMap

from members.models import Member
from scrm.tenancy import require_tenant_id
from tags.audience import fields as F
from tags.models import MemberTag

CHUNK = 50_000


@dataclass
class Truth:
    scope: BitMap | None  # the member numbers read; None: every member of the tenant
    active: BitMap = field(default_factory=BitMap)
    categories: dict[str, dict[str, BitMap]] = field(default_factory=dict)
    numbers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    tags: dict[int, BitMap] = field(default_factory=dict)


def _members(scope: BitMap | None):
    queryset = Member.objects.filter(status=Member.Status.ACTIVE)
    if scope is not None:
        queryset = queryset.filter(member_no__in=list(scope))
    return queryset.annotate(birth_month=ExtractMonth("birthday"))


def _paths() -> list[tuple[F.Field, str]]:
    return [(f, "birth_month" if f.name == "birth_month" else f.path) for f in F.FIELDS.values()]


def _read_attributes(truth: Truth) -> None:
    paths = _paths()
    categories = {f.name: defaultdict(list) for f, _path in paths if f.kind != F.NUMBER}
    numbers = {f.name: ([], []) for f, _path in paths if f.kind == F.NUMBER}
    active = []
    rows = _members(truth.scope).values_list("member_no", *[path for _f, path in paths])
    for row in rows.iterator(chunk_size=CHUNK):
        member_no = row[0]
        active.append(member_no)
        for (f, _path), value in zip(paths, row[1:], strict=True):
            if f.kind == F.NUMBER:
                number = F.to_index_number(f, value)
                if number is not None:
                    numbers[f.name][0].append(number)
                    numbers[f.name][1].append(member_no)
            else:
                category = F.to_index_category(f, value)
                if category is not None:
                    categories[f.name][category].append(member_no)
    truth.active = BitMap(active)
    truth.categories = {name: {value: BitMap(nos) for value, nos in values.items()}
                        for name, values in categories.items()}
    for name, (values, nos) in numbers.items():
        values_array = np.array(values, dtype=np.int64)
        order = np.argsort(values_array, kind="stable")
        truth.numbers[name] = (values_array[order], np.array(nos, dtype=np.uint32)[order])


def _read_tags(truth: Truth) -> None:
    queryset = MemberTag.objects.filter(member__status=Member.Status.ACTIVE)
    if truth.scope is not None:
        queryset = queryset.filter(member__member_no__in=list(truth.scope))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.aggregates import ArrayAgg

        grouped = queryset.values("tag_id").annotate(nos=ArrayAgg(DbF("member__member_no")))
        truth.tags = {row["tag_id"]: BitMap(row["nos"]) for row in grouped}
        return
    tags: dict[int, list[int]] = defaultdict(list)
    for tag_id, member_no in queryset.values_list("tag_id", "member__member_no").iterator(
            chunk_size=CHUNK):
        tags[tag_id].append(member_no)
    truth.tags = {tag_id: BitMap(nos) for tag_id, nos in tags.items()}


FROM_MEMBERS = (
    "FROM members_member m LEFT JOIN members_memberstats s "
    "ON s.tenant_id = m.tenant_id AND s.member_id = m.id "
    "WHERE m.tenant_id = %s AND m.status = 'active'"
)


def _numbers(text: str, dtype) -> np.ndarray:
    body = text.strip("{}")
    return np.array(body.split(","), dtype=dtype) if body else np.array([], dtype=dtype)


def _read_all_postgres(truth: Truth) -> None:
    """The whole tenant, aggregated in PostgreSQL: one grouped query per field instead of
    ten million rows through Python (same values as ``_read_attributes``)."""
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT array_agg(m.member_no)::text {FROM_MEMBERS}", [tenant_id])
        truth.active = BitMap(_numbers(cursor.fetchone()[0] or "", np.uint32))
        for f in F.FIELDS.values():
            if f.kind == F.NUMBER:
                cursor.execute(  # field SQL comes from tags.audience.fields, never from input
                    f"SELECT array_agg(v ORDER BY v, no)::text, array_agg(no ORDER BY v, no)::text "  # noqa: S608, E501
                    f"FROM (SELECT {f.sql} AS v, m.member_no AS no {FROM_MEMBERS}) t "
                    f"WHERE v IS NOT NULL", [tenant_id])
                values, nos = cursor.fetchone()
                truth.numbers[f.name] = (_numbers(values or "", np.int64),
                                         _numbers(nos or "", np.uint32))
                continue
            cursor.execute(f"SELECT {f.sql}, array_agg(m.member_no)::text {FROM_MEMBERS} "
                           f"GROUP BY 1", [tenant_id])
            categories: dict[str, BitMap] = {}
            for value, nos in cursor.fetchall():
                category = F.to_index_category(f, value)
                if category is not None:
                    categories[category] = categories.get(category, BitMap()) | BitMap(
                        _numbers(nos, np.uint32))
            truth.categories[f.name] = categories


def truth_read(*, scope: BitMap | None) -> Truth:
    """Every indexed value of the members in ``scope`` (all members when None), for the
    tenant in context.  Members not active (merged) are simply absent."""
    truth = Truth(scope=scope)
    if scope is None and connection.vendor == "postgresql" and all(
            f.sql for f in F.FIELDS.values()):
        _read_all_postgres(truth)
    else:
        _read_attributes(truth)
    _read_tags(truth)
    return truth
