"""Expiry: lots past ``expires_at`` with points left become ``expire`` entries.

Set-based, in batches of one transaction each: one query picks the next batch of due lots
(keyset order on the partial index of live lots), one locks their members' accounts in
member-id order (the lock order every points write follows: account, then lots), one
re-reads the lots under those locks, and three statements append an entry per lot
(idempotency key ``expire:<lot id>``), empty the lots and set the accounts' balances.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from points.models import EntryKind, PointsAccount, PointsEntry, PointsLot
from points.services.core import (
    ACCOUNT,
    ENTRY,
    LOT,
    LedgerError,
    balance_changed,
    is_postgres,
    sql,
)
from scrm.events import event_record
from scrm.tenancy import require_tenant_id

BATCH_SIZE = 20_000

DUE_SQL = f"""
SELECT id, member_id, expires_at FROM {LOT}
WHERE tenant_id = %(tenant)s AND status = 'active' AND remaining > 0
  AND expires_at <= %(now)s AND (expires_at, id) > (%(after_at)s, %(after_id)s)
  {{members}} {{shard}}
ORDER BY expires_at, id
LIMIT %(limit)s
"""  # noqa: S608

LOCK_SQL = f"""
SELECT count(*) FROM (
    SELECT 1 FROM {ACCOUNT}
    WHERE tenant_id = %(tenant)s AND member_id = ANY(%(members)s)
    ORDER BY member_id
    FOR UPDATE
) AS locked
"""  # noqa: S608

# A new statement, so a new snapshot: under the account locks the lots cannot change (every
# write to a lot holds its member's account lock first), so they are read without locking
# them one by one.  The batch is the due lots of the locked members within the key range
# the first query read.  Each entry's balance_after is the account's balance less the
# member's expired lots so far (a member may have several in one batch).
EXPIRE_SQL = f"""
WITH due AS (
    SELECT lot.id, lot.member_id, lot.remaining,
           account.balance - SUM(lot.remaining) OVER (
               PARTITION BY lot.member_id ORDER BY lot.expires_at, lot.id) AS balance_after
    FROM {LOT} AS lot
    JOIN {ACCOUNT} AS account
      ON account.tenant_id = %(tenant)s AND account.member_id = lot.member_id
    WHERE lot.tenant_id = %(tenant)s AND lot.status = 'active' AND lot.remaining > 0
      AND lot.expires_at <= %(now)s
      AND (lot.expires_at, lot.id) > (%(after_at)s, %(after_id)s)
      AND (lot.expires_at, lot.id) <= (%(last_at)s, %(last_id)s)
      AND lot.member_id = ANY(%(members)s)
), written AS (
    INSERT INTO {ENTRY} (tenant_id, member_id, kind, points, balance_after, shortfall_delta,
                         reason, ref_type, ref_id, operator, idempotency_key, created_at)
    SELECT %(tenant)s, member_id, 'expire', -remaining, balance_after, 0, %(reason)s, 'lot',
           id::text, 'system', 'expire:' || id, %(at)s
    FROM due
    ON CONFLICT ON CONSTRAINT points_entry_idem_uniq DO NOTHING
    RETURNING 1
), emptied AS (
    UPDATE {LOT} AS lot SET remaining = 0, status = 'expired'
    FROM due WHERE lot.tenant_id = %(tenant)s AND lot.id = due.id
    RETURNING 1
), debited AS (
    UPDATE {ACCOUNT} AS account SET balance = account.balance - totals.points,
        updated_at = %(at)s
    FROM (SELECT member_id, SUM(remaining) AS points FROM due GROUP BY member_id) AS totals
    WHERE account.tenant_id = %(tenant)s AND account.member_id = totals.member_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM emptied),
       (SELECT COALESCE(SUM(remaining), 0) FROM due)
"""  # noqa: S608

# Index probes, whatever the statistics say: a batch touches a few thousand rows of tables
# with millions, where a misestimated hash join would scan them all.
PLANNER_SQL = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off"
)


def points_expire(*, now: datetime | None = None, member_ids: list[int] | None = None,
                  shard: tuple[int, int] = (0, 1),
                  batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Expire the tenant's due lots (only ``member_ids``' when given; only the members with
    ``member_id % shard[1] == shard[0]``, so several workers can share a big tenant).
    Returns (lots, points) expired.  Safe to run twice, or next to itself: a lot is
    expired once."""
    tenant_id = require_tenant_id()
    now = now or timezone.now()
    if not is_postgres():
        return _expire_portable(tenant_id=tenant_id, now=now, member_ids=member_ids,
                                shard=shard)
    after: tuple[datetime, int] = (datetime.min.replace(tzinfo=now.tzinfo), 0)
    lots_total = points_total = 0
    while True:
        lots, points, last, full = _batch(tenant_id=tenant_id, now=now, after=after,
                                          member_ids=member_ids, shard=shard,
                                          batch_size=batch_size)
        lots_total, points_total = lots_total + lots, points_total + points
        if not full:
            return lots_total, points_total
        after = last


def _batch(*, tenant_id: int, now: datetime, after: tuple[datetime, int],
           member_ids: list[int] | None, shard: tuple[int, int], batch_size: int):
    members_filter = "AND member_id = ANY(%(members)s)" if member_ids is not None else ""
    shard_filter = "AND member_id %% %(shards)s = %(shard)s" if shard[1] > 1 else ""
    with transaction.atomic():
        due = sql(DUE_SQL.format(members=members_filter, shard=shard_filter), {
            "tenant": tenant_id, "now": now, "after_at": after[0], "after_id": after[1],
            "limit": batch_size, "members": member_ids, "shard": shard[0], "shards": shard[1],
        })  # fmt: skip
        if not due:
            return 0, 0, after, False
        last = (due[-1][2], due[-1][0])
        if member_ids is None:  # SET LOCAL lasts as long as the caller's transaction
            sql(PLANNER_SQL, [])
        members = sorted({row[1] for row in due})
        sql(LOCK_SQL, {"tenant": tenant_id, "members": members})
        written, emptied, points = sql(EXPIRE_SQL, {
            "tenant": tenant_id, "now": now, "after_at": after[0], "after_id": after[1],
            "last_at": last[0], "last_id": last[1], "members": members, "at": timezone.now(),
            "reason": _("积分过期"),
        })[0]  # fmt: skip
        if written:  # one event for the batch (scrm/events.py)
            event_record(tenant_id=tenant_id, type="points.changed",
                         data={"kind": "expire", "member_ids": members})
        if written != emptied:  # a lot expired twice: its key is taken
            raise LedgerError(f"{emptied - written} lots already had expire entries")
        balance_changed(tenant_id=tenant_id, member_ids=members)
    return written, int(points), last, len(due) == batch_size


@transaction.atomic
def _expire_portable(*, tenant_id: int, now: datetime, member_ids: list[int] | None,
                     shard: tuple[int, int]) -> tuple[int, int]:
    """EXPIRE_SQL one lot at a time, for SQLite (the quick start)."""
    lots = PointsLot.objects.filter(status=PointsLot.Status.ACTIVE, remaining__gt=0,
                                    expires_at__lte=now).order_by("expires_at", "id")
    if member_ids is not None:
        lots = lots.filter(member_id__in=member_ids)
    expired = points = 0
    for lot in lots:
        if lot.member_id % shard[1] != shard[0]:
            continue
        account = PointsAccount.objects.get(member_id=lot.member_id)
        balance = account.balance - lot.remaining
        PointsEntry.objects.create(
            tenant_id=tenant_id, member_id=lot.member_id, kind=EntryKind.EXPIRE,
            points=-lot.remaining, balance_after=balance, reason=_("积分过期"), ref_type="lot",
            ref_id=str(lot.pk), operator="system", idempotency_key=f"expire:{lot.pk}",
            created_at=timezone.now())
        PointsAccount.objects.filter(pk=account.pk).update(balance=balance,
                                                           updated_at=timezone.now())
        PointsLot.objects.filter(pk=lot.pk).update(remaining=0, status=PointsLot.Status.EXPIRED)
        balance_changed(tenant_id=tenant_id, member_ids=[lot.member_id])
        event_record(tenant_id=tenant_id, type="points.changed",
                     data={"kind": "expire", "member_ids": [lot.member_id]})
        expired, points = expired + 1, points + lot.remaining
    return expired, points
