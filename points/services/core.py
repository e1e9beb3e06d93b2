"""Ledger primitives shared by the points services: the account row, entries, lots and FIFO
consumption.  Callers run them inside one transaction.

Lock order, everywhere: the account row first, then that member's lots.  Where several
accounts are locked (expiry, merges) they are locked in member-id order.  Every write to a
lot happens under its member's account lock, so code holding that lock reads the lots
without locking them.

Idempotency: an entry's key is claimed by its ``INSERT … ON CONFLICT DO NOTHING``.  A taken
key raises ``KeyTaken``; ``run_idempotent`` rolls the attempt back and replays the entry that
holds the key (or refuses when it was written for a different request).
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from members.models import Member
from points.models import EntryKind, PointsAccount, PointsEntry, PointsLot, PointsLotUse
from scrm.api.errors import ApplicationError, Conflict
from scrm.events import event_record

ACCOUNT = PointsAccount._meta.db_table
ENTRY = PointsEntry._meta.db_table
LOT = PointsLot._meta.db_table
LOT_USE = PointsLotUse._meta.db_table
MEMBER = Member._meta.db_table
MERGE_HOPS = 5


@dataclass(frozen=True)
class PointsResult:
    entry: PointsEntry
    balance: int
    shortfall: int
    replayed: bool = False


@dataclass
class Account:
    member_id: int
    balance: int
    shortfall: int


class KeyTaken(Exception):  # noqa: N818 - a signal to roll back and replay, not an error
    """The idempotency key belongs to an earlier entry."""


class InsufficientPoints(Conflict):
    default_code = "insufficient_points"


class LedgerError(RuntimeError):
    """An invariant would break (lots do not cover the balance): the transaction rolls back."""


def insufficient(balance: int, wanted: int) -> InsufficientPoints:
    return InsufficientPoints(
        _("积分不足：可用 %(balance)s，需要 %(wanted)s。") % {"balance": balance, "wanted": wanted},
        code="insufficient_points",
    )


def key_reused() -> ApplicationError:
    return ApplicationError(
        _("该 Idempotency-Key 已用于另一个不同的请求。"),
        code="idempotency_key_reused",
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
    )


def require_positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ApplicationError(_("积分必须是正整数。"), code="invalid_points",
                               fields={"points": [_("必须是正整数。")]})


def sql(query: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    if not is_postgres():
        query, params = _portable(query, params)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


ANY_PARAM = re.compile(r"= ANY\(%\((\w+)\)s\)")


def _portable(query: str, params: dict[str, Any] | list[Any]):
    """This module's statements as SQLite (the quick start) runs them: no row locks (SQLite
    runs one writing transaction at a time), the idempotency constraint named by its
    columns, arrays expanded into IN lists.  The statements SQLite cannot run at all
    (data-modifying CTEs) have their own paths."""
    query = re.sub(r"\bFOR (UPDATE|KEY SHARE)\b", "", query).replace("now()", "CURRENT_TIMESTAMP")
    query = query.replace("ON CONFLICT ON CONSTRAINT points_entry_idem_uniq",
                          "ON CONFLICT (tenant_id, idempotency_key)")
    if isinstance(params, dict):
        params = dict(params)
        for name in ANY_PARAM.findall(query):
            values = list(params.pop(name) or [])
            names = [f"{name}_{i}" for i in range(len(values))]
            params.update(zip(names, values, strict=True))
            placeholders = ", ".join(f"%({n})s" for n in names) or "NULL"
            query = query.replace(f"= ANY(%({name})s)", f"IN ({placeholders})")
    return query, params


# Members and merges


def member_resolve(member: Member) -> Member:
    """The member that holds ``member``'s points now: itself, or the one it was merged into."""
    for _hop in range(MERGE_HOPS):
        if member.status != Member.Status.MERGED or member.merged_into_id is None:
            return member
        member = Member.objects.get(pk=member.merged_into_id)
    return member


def member_reload(member_id: int) -> Member:
    return member_resolve(Member.objects.get(pk=member_id))


# The account

# The member row is locked (FOR KEY SHARE, as the foreign-key check would at commit) before
# the account exists: members first, then accounts, the order merges lock them in.
ENSURE_SQL = f"""
INSERT INTO {ACCOUNT} (tenant_id, member_id, balance, shortfall, lifetime_earned, is_active,
                       created_at, updated_at)
SELECT tenant_id, id, 0, 0, 0, true, now(), now() FROM {MEMBER}
WHERE tenant_id = %(tenant)s AND id = %(member)s
FOR KEY SHARE
ON CONFLICT (tenant_id, member_id) DO NOTHING
"""  # noqa: S608
LOCK_SQL = f"""
SELECT balance, shortfall, is_active FROM {ACCOUNT}
WHERE tenant_id = %(tenant)s AND member_id = %(member)s FOR UPDATE
"""  # noqa: S608
CREDIT_SQL = f"""
UPDATE {ACCOUNT} SET balance = balance + %(points)s,
    lifetime_earned = lifetime_earned + %(lifetime)s, updated_at = %(now)s
WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND shortfall = 0 AND is_active
RETURNING balance
"""  # noqa: S608
# Not while some of the member's lots are past expiry: those are written off first.
DEBIT_SQL = f"""
UPDATE {ACCOUNT} SET balance = balance - %(points)s, updated_at = %(now)s
WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND balance >= %(points)s
  AND is_active
  AND NOT EXISTS (
      SELECT 1 FROM {LOT} WHERE tenant_id = %(tenant)s AND member_id = %(member)s
        AND status = 'active' AND remaining > 0 AND expires_at <= %(now)s)
RETURNING balance
"""  # noqa: S608
SET_SQL = f"""
UPDATE {ACCOUNT} SET balance = %(balance)s, shortfall = %(shortfall)s,
    lifetime_earned = lifetime_earned + %(lifetime)s, updated_at = %(now)s
WHERE tenant_id = %(tenant)s AND member_id = %(member)s
"""  # noqa: S608
DUE_EXISTS_SQL = f"""
SELECT 1 FROM {LOT}
WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND status = 'active'
  AND remaining > 0 AND expires_at <= %(now)s
LIMIT 1
"""  # noqa: S608


def account_ensure(*, tenant_id: int, member_id: int) -> None:
    sql(ENSURE_SQL, {"tenant": tenant_id, "member": member_id})


def account_credit_fast(*, tenant_id: int, member_id: int, points: int, lifetime: int,
                        now: datetime) -> int | None:
    """``balance += points`` on an open account that owes nothing; the new balance, or None
    when the slow path must decide (no account yet, a shortfall, or a merged account)."""
    if not is_postgres():
        return None  # the fast path's entry-and-lot statement is PostgreSQL's
    rows = sql(CREDIT_SQL, {"points": points, "lifetime": lifetime, "now": now,
                            "tenant": tenant_id, "member": member_id})
    return rows[0][0] if rows else None


def account_debit(*, tenant_id: int, member_id: int, points: int, now: datetime) -> int | None:
    """The conditional update: ``balance -= points`` only where the balance covers it (and no
    lot is waiting to be expired); the new balance, or None."""
    rows = sql(DEBIT_SQL, {"points": points, "now": now, "tenant": tenant_id,
                           "member": member_id})
    return rows[0][0] if rows else None


def account_lock(*, tenant_id: int, member: Member) -> tuple[Member, Account]:
    """Lock the member's account, creating it when missing.  A merge may have closed it
    since the member was read: then the survivor's account is locked instead."""
    for _hop in range(MERGE_HOPS):
        rows = sql(LOCK_SQL, {"tenant": tenant_id, "member": member.pk})
        if not rows:
            account_ensure(tenant_id=tenant_id, member_id=member.pk)
            rows = sql(LOCK_SQL, {"tenant": tenant_id, "member": member.pk})
        balance, shortfall, is_active = rows[0]
        if is_active:
            return member, Account(member.pk, balance, shortfall)
        member = member_reload(member.pk)
    raise LedgerError(f"member {member.pk}: too many merges to follow")


def account_set(*, tenant_id: int, account: Account, lifetime_delta: int = 0,
                now: datetime) -> None:
    sql(SET_SQL, {
        "balance": account.balance, "shortfall": account.shortfall, "lifetime": lifetime_delta,
        "now": now, "tenant": tenant_id, "member": account.member_id,
    })  # fmt: skip


def account_read(*, member_id: int) -> Account:
    row = PointsAccount.objects.filter(member_id=member_id).values_list(
        "balance", "shortfall").first()
    return Account(member_id, *(row or (0, 0)))


# Entries


def balance_changed(*, tenant_id: int, member_ids: list[int]) -> None:
    """Audiences select on the points balance: the index answers for these members from the
    database until it folds them in (same transaction as the change)."""
    from tags.audience.index import audience_mark_dirty

    audience_mark_dirty(member_ids=member_ids)


@dataclass(frozen=True)
class Ref:
    """What an entry is about: ("order", "123"), ("mall_order", "A17"), ("checkin", day)."""

    type: str = ""
    id: str = ""


NO_REF = Ref()


def points_event(*, entry_id: int, fields: dict[str, Any]) -> None:
    """The ``points.changed`` event, in the entry's transaction (scrm/events.py)."""
    event_record(tenant_id=fields["tenant_id"], type="points.changed",
                 occurred_at=fields["created_at"],
                 data={"member_id": fields["member_id"], "entry_id": entry_id,
                       "kind": fields["kind"], "points": fields["points"],
                       "balance_after": fields["balance_after"], "reason": fields["reason"],
                       "ref_type": fields["ref_type"], "ref_id": fields["ref_id"]})


def entry_insert(*, tenant_id: int, member_id: int, kind: str, points: int, balance_after: int,
                 reason: str, operator: str, ref: Ref = NO_REF, key: str | None = None,
                 shortfall_delta: int = 0, now: datetime) -> PointsEntry:
    """Append an entry, claiming ``key``; raises ``KeyTaken`` when the key is in use."""
    fields = {
        "tenant_id": tenant_id, "member_id": member_id, "kind": kind, "points": points,
        "balance_after": balance_after, "shortfall_delta": shortfall_delta,
        "reason": reason[:255], "ref_type": ref.type, "ref_id": ref.id,
        "operator": operator[:64], "idempotency_key": key, "created_at": now,
    }  # fmt: skip
    columns = ", ".join(fields)
    values = ", ".join(f"%({name})s" for name in fields)
    rows = sql(
        f"INSERT INTO {ENTRY} ({columns}) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT ON CONSTRAINT points_entry_idem_uniq DO NOTHING RETURNING id",
        fields,
    )
    if not rows:
        raise KeyTaken(key)
    if points:
        balance_changed(tenant_id=tenant_id, member_ids=[member_id])
        points_event(entry_id=rows[0][0], fields=fields)
    entry = PointsEntry(id=rows[0][0], **fields)
    entry._state.adding = False
    entry._state.db = "default"
    return entry


def run_idempotent(*, key: str | None, expect: dict[str, Any],
                   attempt: Callable[[], PointsResult]) -> PointsResult:
    """Run ``attempt`` in its own transaction.  When ``key`` turns out to be taken (or the
    attempt failed for want of points because an earlier request with this key already
    spent them), answer with the entry that holds the key instead."""
    try:
        with transaction.atomic():
            return attempt()
    except KeyTaken:
        pass
    except InsufficientPoints:
        if key is None or not PointsEntry.objects.filter(idempotency_key=key).exists():
            raise
    return replay(key=key, expect=expect)


def replay(*, key: str | None, expect: dict[str, Any]) -> PointsResult:
    entry = PointsEntry.objects.filter(idempotency_key=key).first()
    if entry is None:
        raise LedgerError(f"idempotency key {key!r} was taken but holds no entry")
    members = expect.pop("member_id__in", None)
    if members is not None and entry.member_id not in members:
        raise key_reused()
    if any(getattr(entry, name) != value for name, value in expect.items()):
        raise key_reused()
    account = account_read(member_id=entry.member_id)
    return PointsResult(entry, account.balance, account.shortfall, replayed=True)


# Lots


# The fast path of a credit: the entry and its lot in one statement.
EARN_SQL = f"""
WITH entry AS (
    INSERT INTO {ENTRY} (tenant_id, member_id, kind, points, balance_after, shortfall_delta,
                         reason, ref_type, ref_id, operator, idempotency_key, created_at)
    VALUES (%(tenant_id)s, %(member_id)s, %(kind)s, %(points)s, %(balance_after)s, 0,
            %(reason)s, %(ref_type)s, %(ref_id)s, %(operator)s, %(idempotency_key)s,
            %(created_at)s)
    ON CONFLICT ON CONSTRAINT points_entry_idem_uniq DO NOTHING
    RETURNING id
)
INSERT INTO {LOT} (tenant_id, member_id, earned, remaining, earned_at, expires_at,
                   source_entry_id, status)
SELECT %(tenant_id)s, %(member_id)s, %(points)s, %(points)s, %(created_at)s, %(expires_at)s,
       id, 'active'
FROM entry
RETURNING source_entry_id
"""  # noqa: S608


def entry_with_lot_insert(*, tenant_id: int, member_id: int, kind: str, points: int,
                          balance_after: int, reason: str, operator: str, ref: Ref,
                          key: str | None, expires_at: datetime, now: datetime) -> PointsEntry:
    """``entry_insert`` and ``lot_create`` in one round trip."""
    fields = {
        "tenant_id": tenant_id, "member_id": member_id, "kind": kind, "points": points,
        "balance_after": balance_after, "shortfall_delta": 0, "reason": reason[:255],
        "ref_type": ref.type, "ref_id": ref.id, "operator": operator[:64],
        "idempotency_key": key, "created_at": now,
    }  # fmt: skip
    rows = sql(EARN_SQL, {**fields, "expires_at": expires_at})
    if not rows:
        raise KeyTaken(key)
    if points:
        balance_changed(tenant_id=tenant_id, member_ids=[member_id])
        points_event(entry_id=rows[0][0], fields=fields)
    entry = PointsEntry(id=rows[0][0], **fields)
    entry._state.adding = False
    entry._state.db = "default"
    return entry


def lot_create(*, entry: PointsEntry, points: int, expires_at: datetime) -> PointsLot:
    return PointsLot.objects.create(
        tenant_id=entry.tenant_id, member_id=entry.member_id, earned=points, remaining=points,
        earned_at=entry.created_at, expires_at=expires_at, source_entry_id=entry.pk,
    )  # fmt: skip


# Oldest expiry first (``preferred`` lots, a reversal's own, before the others).  No row
# locks: the caller holds the member's account lock, and every write to a lot does.
CONSUME_SQL = f"""
WITH ordered AS (
    SELECT id, remaining,
           SUM(remaining) OVER (ORDER BY source_entry_id = ANY(%(preferred)s) DESC,
                                expires_at, id) AS cumulative
    FROM {LOT}
    WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND status = 'active'
      AND remaining > 0
), taken AS (
    SELECT id, LEAST(remaining, %(points)s - (cumulative - remaining)) AS used
    FROM ordered WHERE cumulative - remaining < %(points)s
), spent AS (
    UPDATE {LOT} AS lot SET remaining = lot.remaining - taken.used
    FROM taken WHERE lot.tenant_id = %(tenant)s AND lot.id = taken.id
    RETURNING lot.id, taken.used
)
INSERT INTO {LOT_USE} (tenant_id, entry_id, lot_id, points)
SELECT %(tenant)s, %(entry)s, id, used FROM spent
RETURNING points
"""  # noqa: S608


def lots_consume(*, entry: PointsEntry, points: int, preferred: Iterable[int] = ()) -> None:
    """Take ``points`` from the member's live lots, oldest expiry first, recording each use."""
    if is_postgres():
        rows = sql(CONSUME_SQL, {
            "tenant": entry.tenant_id, "member": entry.member_id, "entry": entry.pk,
            "points": points, "preferred": list(preferred),
        })  # fmt: skip
        taken = sum(row[0] for row in rows)
    else:
        taken = _lots_consume_portable(entry=entry, points=points, preferred=set(preferred))
    if taken != points:
        raise LedgerError(
            f"member {entry.member_id}: lots hold {taken} of the {points} points to take")


def _lots_consume_portable(*, entry: PointsEntry, points: int, preferred: set[int]) -> int:
    """CONSUME_SQL, one lot at a time."""
    lots = sorted(PointsLot.objects.filter(member_id=entry.member_id,
                                           status=PointsLot.Status.ACTIVE, remaining__gt=0),
                  key=lambda lot: (lot.source_entry_id not in preferred, lot.expires_at, lot.id))
    taken, uses = 0, []
    for lot in lots:
        if taken == points:
            break
        used = min(lot.remaining, points - taken)
        PointsLot.objects.filter(pk=lot.pk).update(remaining=lot.remaining - used)
        uses.append(PointsLotUse(tenant_id=entry.tenant_id, entry_id=entry.pk, lot_id=lot.pk,
                                 points=used))
        taken += used
    PointsLotUse.objects.bulk_create(uses)
    return taken


def lots_due_exist(*, tenant_id: int, member_id: int, now: datetime) -> bool:
    return bool(sql(DUE_EXISTS_SQL, {"tenant": tenant_id, "member": member_id, "now": now}))


# Shortfall


def shortfall_settle(*, credit: PointsEntry, account: Account, paid: int, operator: str,
                     now: datetime) -> PointsEntry:
    """A credit paid off ``paid`` points of the shortfall: write that down and take the
    points from the lots just credited.  ``account`` holds the state after both."""
    entry = entry_insert(
        tenant_id=credit.tenant_id, member_id=credit.member_id, kind=EntryKind.REVERSE,
        points=-paid, shortfall_delta=-paid, balance_after=account.balance,
        reason=_("抵扣欠分"), operator=operator, ref=Ref("entry", str(credit.pk)), now=now,
    )  # fmt: skip
    lots_consume(entry=entry, points=paid)
    return entry


def timestamp() -> datetime:
    return timezone.now()
