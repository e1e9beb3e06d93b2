"""Issuing one template to many members at once (campaigns): a million in under a minute.

The members are taken in chunks (50,000 by default), each chunk one transaction:

1. lock the template's row (as a single issue does), so limits and stock are read as they
   stand and no other issue of the template interleaves;
2. one query keeps the chunk's members that may have one: members of the tenant, not merged
   away, of an allowed level, without the key ``<key_prefix>:<member id>`` already (a chunk
   run again after a crash issues nothing twice) and under the per-member limit;
3. one conditional update takes from the stock as many as are left, up to that number; the
   rest of the chunk, and every chunk after the stock ran out, count as out of stock;
4. codes are drawn in Python (``codes_generate``), ids taken beforehand from the table's
   sequence, and the rows go in through COPY into a staging table and one ``INSERT …
   SELECT … ON CONFLICT (tenant_id, idempotency_key) DO NOTHING``
   (``scrm.db.copy.copy_insert``); a taken code (about once in 10^12) fails the statement,
   which runs again with fresh codes; a row whose key another template's coupon holds is
   skipped and its stock given back;
5. the members' timeline events go in the same way; ``coupon_issued`` is sent once per
   chunk, with its coupons' ids, after the chunk commits.

Memory stays flat: ``member_ids`` is read a chunk at a time and each chunk's rows are gone
once it commits."""

import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.coupons import signals
from campaigns.coupons.codes import codes_generate
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services.common import TIMELINE_ISSUED, invalid, pk_in
from campaigns.coupons.services.issue import (
    CODE_ATTEMPTS,
    MAX_KEY_LENGTH,
    check_issuable,
    check_request,
    stock_take,
    timeline_issued_data,
    validity_for,
)
from members.models import Member, TimelineEvent
from points.models import MemberTier, TierLevel, TierProgram
from scrm.access import Actor
from scrm.api.errors import Conflict
from scrm.db.copy import copy_insert, copy_text, rows_insert
from scrm.events import events_record

logger = logging.getLogger(__name__)

CHUNK_SIZE = 50_000
SQLITE_CHUNK_SIZE = 500  # the quick start: SQLite, one writer at a time
COUPON_COLUMNS = ("id", "tenant_id", "template_id", "member_id", "code", "status", "source",
                  "ref", "idempotency_key", "operator", "issued_at", "valid_from",
                  "valid_until", "redeemed_store", "redeemed_by", "cancel_reason")
TIMELINE_COLUMNS = ("tenant_id", "member_id", "kind", "occurred_at", "data", "actor")


@dataclass(frozen=True)
class BulkChunk:
    """One chunk's outcome, handed to ``on_chunk`` inside its transaction."""

    members: int  # ids read for this chunk
    issued: int
    out_of_stock: int
    skipped: int  # not eligible: limit reached, issued before, another level, not a member
    coupon_ids: list[int] = field(repr=False)


def coupons_issue_bulk(*, actor: Actor, template: CouponTemplate, member_ids: Iterable[int],
                       key_prefix: str, source: str, ref: str = "",
                       chunk_size: int = CHUNK_SIZE,
                       on_chunk: Callable[[BulkChunk], None] | None = None) -> int:
    """Issue a coupon of ``template`` to each of ``member_ids`` that may have one, keyed
    ``f"{key_prefix}:{member_id}"``; returns how many were issued.  Each chunk of
    ``chunk_size`` is its own transaction, so an interrupted run is resumed by running it
    again: members who got theirs are skipped.  ``on_chunk`` runs inside each chunk's
    transaction (a campaign's checkpoint and counts commit with the coupons).  Refused
    (409 ``template_inactive``, ``template_expired``) before anything is issued when the
    template cannot be issued now; once it stops being issuable midway, the rest is
    skipped."""
    _check_request(key_prefix=key_prefix, source=source, ref=ref)
    check_issuable(template=template, now=timezone.now())
    if connection.vendor != "postgresql":
        chunk_size = min(chunk_size, SQLITE_CHUNK_SIZE)
    issued = out_of_stock = skipped = 0
    stock_gone = halted = False
    for chunk in _chunks(member_ids, chunk_size):
        if stock_gone or halted:
            result = BulkChunk(len(chunk), 0, len(chunk) if stock_gone else 0,
                               0 if stock_gone else len(chunk), [])
        else:
            result = _chunk_issue(actor=actor, template=template, member_ids=chunk,
                                  key_prefix=key_prefix, source=source, ref=ref,
                                  on_chunk=on_chunk)
            if result is None:  # deactivated, or its fixed validity ended, since the start
                halted, result = True, BulkChunk(len(chunk), 0, 0, len(chunk), [])
            stock_gone = result.out_of_stock > 0
        issued, out_of_stock = issued + result.issued, out_of_stock + result.out_of_stock
        skipped += result.skipped
    logger.info("coupons %s (%s): %s issued, %s out of stock, %s skipped", template.code,
                key_prefix, issued, out_of_stock, skipped)
    return issued


def _check_request(*, key_prefix: str, source: str, ref: str) -> None:
    check_request(key=f"{key_prefix}:0", source=source, ref=ref)
    if len(key_prefix) > MAX_KEY_LENGTH - 21:  # room for ":" and a bigint
        raise invalid({"key_prefix": [_("过长。")]})


def _chunks(member_ids: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(member_ids)
    while chunk := list(itertools.islice(iterator, size)):
        yield list(dict.fromkeys(chunk))  # one coupon per member and key: drop repeats


def _chunk_issue(*, actor: Actor, template: CouponTemplate, member_ids: list[int],
                 key_prefix: str, source: str, ref: str,
                 on_chunk: Callable[[BulkChunk], None] | None) -> BulkChunk | None:
    """One chunk, one transaction; None when the template can no longer be issued."""
    with transaction.atomic():
        _jit_off()
        template = CouponTemplate.objects.select_for_update().get(pk=template.pk)
        now = timezone.now()
        try:
            check_issuable(template=template, now=now)
        except Conflict:
            return None
        eligible = _eligible(template=template, member_ids=member_ids, key_prefix=key_prefix)
        left = template.stock_left
        granted = len(eligible) if left is None else min(len(eligible), left)
        if granted:
            stock_take(template=template, count=granted)
        batch = _batch(actor=actor, template=template, member_ids=eligible[:granted],
                       key_prefix=key_prefix, source=source, ref=ref, now=now)
        inserted = _insert(batch)
        if len(inserted) < granted:  # keys another template's coupons hold: stock back
            CouponTemplate.objects.filter(pk=template.pk).update(
                issued_count=F("issued_count") - (granted - len(inserted)))
        _timeline(batch, inserted)
        events_record(tenant_id=template.tenant_id, type="coupon.issued", occurred_at=now,
                      payloads=[{"coupon_id": row[0], "template_id": template.pk,
                                 "member_id": row[1], "source": source} for row in inserted])
        result = BulkChunk(members=len(member_ids), issued=len(inserted),
                           out_of_stock=len(eligible) - granted,
                           skipped=len(member_ids) - len(eligible) + granted - len(inserted),
                           coupon_ids=sorted(row[0] for row in inserted))
        if on_chunk is not None:
            on_chunk(result)
        if inserted:
            tenant_id, coupon_ids = template.tenant_id, result.coupon_ids
            transaction.on_commit(lambda: signals.coupon_issued.send(
                sender=Coupon, tenant_id=tenant_id, coupon_ids=coupon_ids))
    return result


# Driven by the chunk's ids (a row count the planner knows), each check a correlated
# subquery: one index lookup per member, whatever the tables' statistics say (a join planned
# on a just-loaded table can scan the coupons once per member).  One look at the member's
# coupons answers both the key (a chunk run again) and the limit; the key is compared inside
# the aggregate, not as a condition, where under row-level security a comparison with an
# expression would have to be leakproof to use an index.  A key held by another member's
# coupon (a reused prefix) is caught by the insert's ON CONFLICT instead.
ELIGIBLE_SQL = """
SELECT wanted.id FROM {wanted}
WHERE (SELECT m.status FROM {member} m
       WHERE m.tenant_id = %(tenant)s AND m.id = wanted.id) = 'active'
  AND (SELECT NOT COALESCE(bool_or(c.idempotency_key = wanted.key), false)
              AND (%(limit)s = 0 OR count(*) FILTER (
                   WHERE c.template_id = %(template)s AND c.status <> 'cancelled') < %(limit)s)
       FROM {coupon} c WHERE c.tenant_id = %(tenant)s AND c.member_id = wanted.id)
  {tiers}
ORDER BY wanted.id
"""
TIERS_SQL = """
  AND (SELECT mt.id FROM {member_tier} mt
       JOIN {level} l ON l.tenant_id = mt.tenant_id AND l.id = mt.level_id
       JOIN {program} p ON p.tenant_id = mt.tenant_id AND p.id = mt.program_id
       WHERE mt.tenant_id = %(tenant)s AND mt.member_id = wanted.id AND p.is_active
         AND l.code IN ({codes}) LIMIT 1) IS NOT NULL
"""


def _jit_off() -> None:
    """A chunk's statements read and write tens of thousands of rows, which puts their
    estimated cost above ``jit_above_cost``; compiling them took longer than running them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _eligible(*, template: CouponTemplate, member_ids: list[int], key_prefix: str) -> list[int]:
    """The members of the chunk who may have one, in id order (the order stock runs out in):
    active members of the tenant, without the key already, under the per-member limit, of
    an allowed level."""
    keys = [f"{key_prefix}:{member_id}" for member_id in member_ids]
    if connection.vendor == "postgresql":
        wanted = "unnest(%(ids)s::bigint[], %(keys)s::text[]) AS wanted(id, key)"
        params: dict[str, Any] = {"ids": member_ids, "keys": keys}
    else:
        wanted = ("(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS "
                  "key FROM json_each(%(pairs)s)) AS wanted")
        params = {"pairs": json.dumps(list(zip(member_ids, keys, strict=True)))}
    params.update(tenant=template.tenant_id, template=template.pk,
                  limit=template.per_member_limit)
    tiers = ""
    if template.allowed_tiers:
        names = [f"tier_{n}" for n in range(len(template.allowed_tiers))]
        params.update(zip(names, template.allowed_tiers, strict=True))
        tiers = TIERS_SQL.format(
            member_tier=MemberTier._meta.db_table, level=TierLevel._meta.db_table,
            program=TierProgram._meta.db_table,
            codes=", ".join(f"%({name})s" for name in names))
    statement = ELIGIBLE_SQL.format(wanted=wanted, member=Member._meta.db_table,
                                    coupon=Coupon._meta.db_table, tiers=tiers)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [row[0] for row in cursor.fetchall()]


def _ids_allocate(count: int) -> list[int]:
    """Ids for ``count`` new coupons from the table's sequence (gaps are harmless)."""
    if not count:
        return []
    table = Coupon._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence's name in a subquery: looked up once, not once a row.
            cursor.execute(f"SELECT nextval((SELECT pg_get_serial_sequence('{table}', 'id'))"  # noqa: S608
                           "::regclass) FROM generate_series(1, %s)", [count])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        highest = cursor.fetchone()[0]
    return list(range(highest + 1, highest + 1 + count))


@dataclass
class _Batch:
    """A chunk's new coupons: what differs per row (id, member, code), and what all share."""

    template: CouponTemplate
    key_prefix: str
    source: str
    ref: str
    operator: str
    now: datetime
    valid_from: datetime
    valid_until: datetime
    rows: list[list[Any]]  # [coupon id, member id, code]

    def key(self, member_id: int) -> str:
        return f"{self.key_prefix}:{member_id}"

    def coupon_rows(self, rows: list[list[Any]]) -> list[list[Any]]:
        """In ``COUPON_COLUMNS`` order."""
        t = self.template
        return [[coupon_id, t.tenant_id, t.pk, member_id, code, Coupon.Status.ISSUED.value,
                 self.source, self.ref, self.key(member_id), self.operator, self.now,
                 self.valid_from, self.valid_until, "", "", ""]
                for coupon_id, member_id, code in rows]

    def coupon_payload(self, rows: list[list[Any]]) -> bytes:
        """``coupon_rows`` as COPY text, the shared values escaped once: building the rows
        and writing them out value by value would cost more than the database's work."""
        t = self.template
        middle = "\t".join(copy_text(value) for value in (
            Coupon.Status.ISSUED.value, self.source, self.ref, f"{self.key_prefix}:"))
        tail = "\t".join(copy_text(value) for value in (
            self.operator, self.now, self.valid_from, self.valid_until, "", "", ""))
        return "".join(f"{coupon_id}\t{t.tenant_id}\t{t.pk}\t{member_id}\t{code}\t{middle}"
                       f"{member_id}\t{tail}\n"
                       for coupon_id, member_id, code in rows).encode()

    def timeline_rows(self, rows: list[list[Any]]) -> list[list[Any]]:
        """In ``TIMELINE_COLUMNS`` order."""
        return [[self.template.tenant_id, member_id, TIMELINE_ISSUED, self.now,
                 timeline_issued_data(template=self.template, coupon_id=coupon_id,
                                      source=self.source), self.operator]
                for coupon_id, member_id, _code in rows]

    def timeline_payload(self, rows: list[list[Any]]) -> bytes:
        data = timeline_issued_data(template=self.template, coupon_id=0, source=self.source)
        del data["coupon"]
        rest = copy_text(json.dumps(data, ensure_ascii=False)[1:])  # '"template": …}'
        head = f"{self.template.tenant_id}\t"
        middle = f"\t{TIMELINE_ISSUED}\t{copy_text(self.now)}\t{{\"coupon\": "
        tail = f", {rest}\t{copy_text(self.operator)}\n"
        return "".join(f"{head}{member_id}{middle}{coupon_id}{tail}"
                       for coupon_id, member_id, _code in rows).encode()


def _batch(*, actor: Actor, template: CouponTemplate, member_ids: list[int], key_prefix: str,
           source: str, ref: str, now: datetime) -> _Batch:
    valid_from, valid_until = validity_for(template=template, now=now)
    rows = [[coupon_id, member_id, code] for coupon_id, member_id, code in zip(
        _ids_allocate(len(member_ids)), member_ids, codes_generate(len(member_ids)),
        strict=True)]
    return _Batch(template=template, key_prefix=key_prefix, source=source, ref=ref,
                  operator=actor.label[:64], now=now, valid_from=valid_from,
                  valid_until=valid_until, rows=rows)


def _insert(batch: _Batch) -> list[list[Any]]:
    """Insert the batch; the rows that went in.  A taken code (about once in 10^12) fails
    the statement, which is then run again with fresh codes; rows whose key another
    template's coupon holds (a reused prefix) are skipped."""
    pending, inserted = batch.rows, []
    for _attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                count = _copy(batch, pending)
        except IntegrityError:  # a code was taken
            _redraw(pending)
            continue
        if count == len(pending):
            return inserted + pending
        there = set(Coupon.objects.filter(pk_in(Coupon, [row[0] for row in pending]))
                    .values_list("pk", flat=True))
        inserted += [row for row in pending if row[0] in there]
        missing = [row for row in pending if row[0] not in there]
        taken = set(Coupon.objects.filter(idempotency_key__in=[batch.key(row[1])
                                                               for row in missing])
                    .values_list("idempotency_key", flat=True))
        pending = [row for row in missing if batch.key(row[1]) not in taken]
        if not pending:
            return inserted
        _redraw(pending)  # SQLite skips every clash: those codes were taken
    raise RuntimeError("coupon codes kept colliding")  # 60 random bits: cannot happen


def _redraw(rows: list[list[Any]]) -> None:
    for row, code in zip(rows, codes_generate(len(rows)), strict=True):
        row[2] = code


def _copy(batch: _Batch, rows: list[list[Any]]) -> int:
    """COPY the rows in, skipping those whose key is taken (on SQLite, those that clash at
    all); how many went in (-1: not known, on SQLite).  The conflict target is the key's
    index alone: ``ON CONFLICT DO NOTHING`` on every unique index cost 70% more."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        rows_insert(model=Coupon, columns=COUPON_COLUMNS, rows=batch.coupon_rows(rows),
                    ignore_conflicts=True)
        return -1
    with connection.cursor() as cursor:
        return copy_insert(cursor, model=Coupon, columns=COUPON_COLUMNS,
                           payload=batch.coupon_payload(rows),
                           on_conflict="ON CONFLICT (tenant_id, idempotency_key) DO NOTHING")


def _timeline(batch: _Batch, rows: list[list[Any]]) -> None:
    if not rows:
        return
    if connection.vendor != "postgresql":
        rows_insert(model=TimelineEvent, columns=TIMELINE_COLUMNS,
                    rows=batch.timeline_rows(rows))
        return
    with connection.cursor() as cursor:
        copy_insert(cursor, model=TimelineEvent, columns=TIMELINE_COLUMNS,
                    payload=batch.timeline_payload(rows))
