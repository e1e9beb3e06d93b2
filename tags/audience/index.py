"""The audience index: roaring bitmaps of member numbers, shared by every worker through the
``AudienceBitmap`` table and cached in each process by (row, version).

Counting reads the dirty members first, then the base bitmaps, evaluates the expression with
bitmap algebra, and replaces the dirty members' part with the exact SQL answer: the base may
lag, the answer never does.  ``audience_fold`` folds dirty members into the base;
``audience_rebuild`` rebuilds it from the database."""

import bisect
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from pyroaring import BitMap

from members.models import Member
from scrm.tenancy import require_tenant_id
from tags.audience import expressions as E
from tags.audience.sql import to_q, with_tenant_stats
from tags.audience.truth import Truth, truth_read
from tags.models import AudienceBitmap, AudienceDirty, Tag

UNIVERSE = ("status", "active")
TAG = "tag"
BUCKETS = 64
CACHE_ENTRIES = 50_000
FOLD_LIMIT = 200_000
FLUSH_BYTES = 32 << 20

_bitmaps: OrderedDict[tuple[int, int], BitMap] = OrderedDict()
_payloads: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()


@dataclass(frozen=True)
class Row:
    pk: int
    version: int
    field: str
    value: str
    low: int | None
    high: int | None


META = ("pk", "version", "field", "value", "low", "high")


def _cache_put(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)


def _bitmaps_of(rows: list[Row]) -> dict[int, BitMap]:
    """The bitmaps of ``rows``, from the process cache or in one query."""
    missing = [row.pk for row in rows if (row.pk, row.version) not in _bitmaps]
    if missing:
        for pk, version, data in AudienceBitmap.objects.filter(pk__in=missing).values_list(
                "pk", "version", "bitmap"):
            _cache_put(_bitmaps, (pk, version), BitMap.deserialize(bytes(data)))
    result = {}
    for row in rows:
        bitmap = _bitmaps.get((row.pk, row.version))
        if bitmap is None:  # changed since the metadata was read: take the newest
            data = AudienceBitmap.objects.filter(pk=row.pk).values_list("bitmap", flat=True)
            bitmap = BitMap.deserialize(bytes(data[0])) if data else BitMap()
        result[row.pk] = bitmap
    return result


def _payload_of(row: Row) -> tuple[np.ndarray, np.ndarray]:
    key = (row.pk, row.version)
    if key not in _payloads:
        data = AudienceBitmap.objects.filter(pk=row.pk).values_list("payload", flat=True)
        _cache_put(_payloads, key, _unpack(bytes(data[0]) if data and data[0] else b""))
    return _payloads[key]


def _pack(values: np.ndarray, nos: np.ndarray) -> bytes:
    return values.astype(np.int64).tobytes() + nos.astype(np.uint32).tobytes()


def _unpack(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    count = len(data) // 12
    return (np.frombuffer(data[: count * 8], dtype=np.int64),
            np.frombuffer(data[count * 8:], dtype=np.uint32))


# ---- reading ----------------------------------------------------------------------------

def _needs(node, tags: set, values: dict, ranges: set) -> None:
    if isinstance(node, E.All | E.Any):
        for child in node.children:
            _needs(child, tags, values, ranges)
    elif isinstance(node, E.Not):
        _needs(node.child, tags, values, ranges)
    elif isinstance(node, E.HasTag):
        tags.add(str(node.tag_id))
    elif isinstance(node, E.Match):
        values.setdefault(node.field, set()).update(node.values)
    elif isinstance(node, E.Range):
        ranges.add(node.field)


def _rows_for(node) -> list[Row]:
    tags, values, ranges = set(), {}, set()
    _needs(node, tags, values, ranges)
    condition = Q(field=UNIVERSE[0], value=UNIVERSE[1]) | Q(field__in=ranges)
    if tags:
        condition |= Q(field=TAG, value__in=tags)
    for field, field_values in values.items():
        condition |= Q(field=field, value__in=field_values)
    return [Row(*row) for row in AudienceBitmap.objects.filter(condition).values_list(*META)]


class Evaluator:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = {(row.field, row.value): row for row in rows}
        self.buckets: dict[str, list[Row]] = {}
        for row in rows:
            if row.low is not None:
                self.buckets.setdefault(row.field, []).append(row)
        # Bucket bitmaps are loaded when a range needs them.
        self.bitmaps = _bitmaps_of([row for row in rows if row.low is None])
        self.universe = self.get(*UNIVERSE)

    def get(self, field: str, value: str) -> BitMap:
        row = self.rows.get((field, value))
        if row is None:
            return BitMap()
        if row.pk not in self.bitmaps:
            self.bitmaps.update(_bitmaps_of([row]))
        return self.bitmaps[row.pk]

    def evaluate(self, node) -> BitMap:
        if isinstance(node, E.All):
            parts = sorted((self.evaluate(child) for child in node.children), key=len)
            return BitMap.intersection(*parts) if len(parts) > 1 else parts[0]
        if isinstance(node, E.Any):
            parts = [self.evaluate(child) for child in node.children]
            return BitMap.union(*parts) if len(parts) > 1 else parts[0]
        if isinstance(node, E.Not):
            return self.universe - self.evaluate(node.child)
        if isinstance(node, E.HasTag):
            return self.get(TAG, str(node.tag_id))
        if isinstance(node, E.Match):
            parts = [self.get(node.field, value) for value in node.values]
            return BitMap.union(*parts) if len(parts) > 1 else parts[0]
        return self._range(node)

    def _range(self, node: E.Range) -> BitMap:
        low = node.low if node.low is not None else -(2**63)
        high = node.high if node.high is not None else 2**63 - 1
        whole, partial = [], []
        for row in self.buckets.get(node.field, []):
            if row.high < low or row.low > high:
                continue
            if low <= row.low and row.high <= high:
                whole.append(row)
            else:
                values, nos = _payload_of(row)
                partial.append(BitMap(nos[(values >= low) & (values <= high)]))
        parts = list(_bitmaps_of(whole).values()) + partial
        return BitMap.union(*parts) if parts else BitMap()


def audience_bitmap(node) -> BitMap:
    """The member numbers of the tenant in context matching ``node``, exactly."""
    dirty = BitMap(AudienceDirty.objects.values_list("member_no", flat=True))
    evaluator = Evaluator(_rows_for(node))
    result = evaluator.evaluate(node) & evaluator.universe
    if dirty:
        exact = with_tenant_stats(Member.objects.filter(
            status=Member.Status.ACTIVE, member_no__in=list(dirty)))
        result = (result - dirty) | BitMap(exact.filter(to_q(
            node, stats="tenant_stats")).values_list("member_no", flat=True))
    return result


def audience_count(node) -> int:
    return len(audience_bitmap(node))


# ---- writing ----------------------------------------------------------------------------

def audience_mark_dirty(*, member_ids: list[int] | None = None,
                        member_nos: list[int] | None = None) -> None:
    """Record that these members changed; called in the same transaction as the change."""
    tenant_id = require_tenant_id()
    if member_ids and not member_nos and connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # one round trip on the hot paths (points)
            cursor.execute(
                f"INSERT INTO {AudienceDirty._meta.db_table} (tenant_id, member_no) "  # noqa: S608
                f"SELECT tenant_id, member_no FROM {Member._meta.db_table} "
                "WHERE tenant_id = %s AND id = ANY(%s)", [tenant_id, list(member_ids)])
        return
    if member_nos and not member_ids and connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the upserts know the numbers already
            cursor.execute(
                f"INSERT INTO {AudienceDirty._meta.db_table} (tenant_id, member_no) "  # noqa: S608
                "SELECT %s, unnest(%s::integer[])", [tenant_id, sorted(set(member_nos))])
        return
    if member_ids:
        member_nos = list(member_nos or []) + list(
            Member.objects.unscoped().filter(tenant_id=tenant_id, pk__in=member_ids)
            .values_list("member_no", flat=True))
    if member_nos:
        AudienceDirty.objects.bulk_create(
            [AudienceDirty(tenant_id=tenant_id, member_no=no) for no in set(member_nos)])


def _lock(blocking: bool) -> bool:
    """One fold or rebuild per tenant at a time (a transaction-scoped advisory lock)."""
    if connection.vendor != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha1(  # noqa: S324
        f"audience:{require_tenant_id()}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        if blocking:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


class Writer:
    """Collects the index rows a fold or rebuild writes: new rows in one bulk insert, tag
    member counts in one bulk update."""

    def __init__(self) -> None:
        self.created: list[AudienceBitmap] = []
        self.counts: dict[int, int] = {}

    def write(self, row: Row | None, field: str, value: str, bitmap: BitMap, *,
              low: int | None = None, high: int | None = None, payload: bytes | None = None,
              count: bool = True) -> None:
        if field == TAG and count:  # the tag's member count follows its bitmap
            self.counts[int(value)] = len(bitmap)
        data = bitmap.serialize()
        if row is None:
            self.created.append(AudienceBitmap(
                tenant_id=require_tenant_id(), field=field, value=value, bitmap=data, low=low,
                high=high, payload=payload, cardinality=len(bitmap)))
            return
        AudienceBitmap.objects.filter(pk=row.pk).update(
            bitmap=data, version=row.version + 1, cardinality=len(bitmap), low=low, high=high,
            payload=payload)
        _cache_put(_bitmaps, (row.pk, row.version + 1), bitmap)

    def flush(self) -> None:
        # Batches by size as well as count: a numeric field's buckets carry their values, and
        # at 10M members one INSERT of them would pass PostgreSQL's 1 GB message limit.
        batch: list[AudienceBitmap] = []
        size = 0
        for row in self.created:
            batch.append(row)
            size += len(row.bitmap) + len(row.payload or b"")
            if len(batch) >= 500 or size >= FLUSH_BYTES:
                AudienceBitmap.objects.bulk_create(batch)
                batch, size = [], 0
        AudienceBitmap.objects.bulk_create(batch)
        tags = [Tag(pk=pk, member_count=count) for pk, count in self.counts.items()]
        Tag.objects.bulk_update(tags, ["member_count"], batch_size=1000)
        self.created, self.counts = [], {}


def _all_rows(locked: bool = False) -> list[Row]:
    queryset = AudienceBitmap.objects.order_by("pk")
    if locked:
        queryset = queryset.select_for_update()
    return [Row(*row) for row in queryset.values_list(*META)]


def _fold_plain(rows: list[Row], truth: Truth, scope: BitMap, writer: Writer) -> None:
    """Tags, categories and the universe: new = (old - scope) | truth."""
    wanted: dict[tuple[str, str], BitMap] = {UNIVERSE: truth.active}
    for field, values in truth.categories.items():
        for value, bitmap in values.items():
            wanted[(field, value)] = bitmap
    for tag_id, bitmap in truth.tags.items():
        wanted[(TAG, str(tag_id))] = bitmap
    plain = [row for row in rows if row.low is None]
    current = _bitmaps_of(plain)
    by_key = {(row.field, row.value): row for row in plain}
    for key in set(by_key) | set(wanted):
        row = by_key.get(key)
        old = current[row.pk] if row else BitMap()
        if key not in wanted and not old.intersect(scope):
            continue
        new = (old - scope) | wanted.get(key, BitMap())
        if row is None or new != old:
            writer.write(row, key[0], key[1], new)


def _buckets_build(values: np.ndarray, nos: np.ndarray) -> list[tuple[int, int, np.ndarray,
                                                                       np.ndarray]]:
    if len(values) == 0:
        return []
    chunks = np.array_split(np.arange(len(values)), min(BUCKETS, len(values)))
    return [(int(values[c[0]]), int(values[c[-1]]), values[c], nos[c]) for c in chunks if len(c)]


def _fold_numbers(rows: list[Row], truth: Truth, scope: BitMap, writer: Writer) -> None:
    for field, (values, nos) in truth.numbers.items():
        buckets = sorted((row for row in rows if row.field == field and row.low is not None),
                         key=lambda row: row.low)
        if not buckets:
            for index, (low, high, b_values, b_nos) in enumerate(_buckets_build(values, nos)):
                writer.write(None, field, f"b{index:03d}", BitMap(b_nos), low=low, high=high,
                             payload=_pack(b_values, b_nos))
            continue
        lows = [row.low for row in buckets]
        incoming: dict[int, list[int]] = {}
        for i, value in enumerate(values):
            incoming.setdefault(max(0, bisect.bisect_right(lows, int(value)) - 1), []).append(i)
        bitmaps = _bitmaps_of(buckets)
        for index, row in enumerate(buckets):
            if index not in incoming and not bitmaps[row.pk].intersect(scope):
                continue
            b_values, b_nos = _payload_of(row)
            keep = ~np.isin(b_nos, np.array(scope, dtype=np.uint32))
            new_values = np.concatenate([b_values[keep], values[incoming.get(index, [])]])
            new_nos = np.concatenate([b_nos[keep], nos[incoming.get(index, [])]])
            if len(new_nos) == len(b_nos) and keep.all():
                continue
            order = np.argsort(new_values, kind="stable")
            new_values, new_nos = new_values[order], new_nos[order]
            low = min(row.low, int(new_values[0])) if len(new_values) else row.low
            high = max(row.high, int(new_values[-1])) if len(new_values) else row.high
            writer.write(row, field, row.value, BitMap(new_nos), low=low, high=high,
                         payload=_pack(new_values, new_nos))


def audience_fold(*, limit: int = FOLD_LIMIT) -> int:
    """Fold dirty members of the tenant in context into the base; returns how many."""
    with transaction.atomic():
        if not _lock(blocking=False):
            return 0
        dirty = list(AudienceDirty.objects.order_by("id").values_list("id", "member_no")[:limit])
        if not dirty:
            return 0
        scope = BitMap(member_no for _id, member_no in dirty)
        truth = truth_read(scope=scope)
        rows = _all_rows(locked=True)
        writer = Writer()
        _fold_plain(rows, truth, scope, writer)
        _fold_numbers(rows, truth, scope, writer)
        writer.flush()
        for start in range(0, len(dirty), 10_000):
            AudienceDirty.objects.filter(
                pk__in=[pk for pk, _no in dirty[start:start + 10_000]]).delete()
    return len(scope)


def audience_rebuild() -> dict[str, int]:
    """Rebuild the base of the tenant in context from the database."""
    with transaction.atomic():
        _lock(blocking=True)
        dirty_ids = list(AudienceDirty.objects.values_list("id", flat=True))
        truth = truth_read(scope=None)
        AudienceBitmap.objects.all().delete()
        Tag.objects.exclude(pk__in=list(truth.tags)).update(member_count=0)
        writer = Writer()
        _fold_plain([], truth, BitMap(), writer)
        _fold_numbers([], truth, BitMap(), writer)
        writer.flush()
        for start in range(0, len(dirty_ids), 10_000):
            AudienceDirty.objects.filter(pk__in=dirty_ids[start:start + 10_000]).delete()
    return {"members": len(truth.active), "tags": len(truth.tags),
            "bitmaps": AudienceBitmap.objects.count()}


def audience_tag_update(*, tag_id: int, added: BitMap, removed: BitMap) -> None:
    """Apply a bulk tagging change straight to the tag's bitmap (same transaction as the
    member-tag rows), so a million-member job does not leave a million dirty members."""
    # The caller keeps the tag's member count: the base bitmap lacks members tagged one at a
    # time since the last fold, so its size is not the count.
    row = AudienceBitmap.objects.select_for_update().filter(field=TAG, value=str(tag_id)).first()
    writer = Writer()
    if row is None:
        writer.write(None, TAG, str(tag_id), BitMap(added), count=False)
    else:
        meta = Row(row.pk, row.version, row.field, row.value, None, None)
        old = BitMap.deserialize(bytes(row.bitmap))
        writer.write(meta, TAG, str(tag_id), (old | added) - removed, count=False)
    writer.flush()


def audience_index_size() -> dict[str, int]:
    """Rows and bytes of the tenant's index (for the benchmark and the dashboard)."""
    from django.db.models import Count, Sum
    from django.db.models.functions import Length

    totals = AudienceBitmap.objects.aggregate(rows=Count("pk"), bytes=Sum(Length("bitmap")),
                                              payload=Sum(Length("payload")))
    return {"rows": totals["rows"] or 0, "bitmap_bytes": totals["bytes"] or 0,
            "payload_bytes": totals["payload"] or 0,
            "dirty": AudienceDirty.objects.count()}
