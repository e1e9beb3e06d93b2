"""Member merges: the merged member's points move to the survivor.

The ledger stays append-only: the loser's entries stay where they were written (each
balance_after stays true), and the move is a pair of ``adjust`` entries, out of the loser
and into the survivor.  The lots move as they are (keeping their expiry dates and their
source entries, so a later refund of the loser's order still finds them).  The loser's
account is closed; writes that raced the merge are redirected to the survivor.
"""

from django.utils.translation import gettext as _

from points.models import EntryKind, PointsCheckIn, PointsLot
from points.services import core
from points.services.core import ACCOUNT, Account, Ref, sql

MERGE_REF = "member_merge"

LOCK_BOTH_SQL = f"""
SELECT member_id, balance, shortfall, lifetime_earned FROM {ACCOUNT}
WHERE tenant_id = %(tenant)s AND member_id = ANY(%(members)s)
ORDER BY member_id
FOR UPDATE
"""  # noqa: S608
CLOSE_SQL = f"""
UPDATE {ACCOUNT} SET balance = 0, shortfall = 0, lifetime_earned = 0, is_active = false,
    updated_at = %(now)s
WHERE tenant_id = %(tenant)s AND member_id = %(member)s
"""  # noqa: S608


def points_merge(*, tenant_id: int, survivor_id: int, merged_id: int, operator: str) -> int:
    """Move ``merged_id``'s points, lots and check-ins to ``survivor_id``; returns the
    points moved.  Runs inside the merge's transaction."""
    now = core.timestamp()
    for member_id in sorted((survivor_id, merged_id)):
        core.account_ensure(tenant_id=tenant_id, member_id=member_id)
    rows = {row[0]: row[1:] for row in sql(
        LOCK_BOTH_SQL, {"tenant": tenant_id, "members": sorted((survivor_id, merged_id))})}
    loser_balance, loser_shortfall, loser_lifetime = rows[merged_id]
    survivor_balance, survivor_shortfall, _lifetime = rows[survivor_id]
    PointsLot.objects.filter(member_id=merged_id).update(member_id=survivor_id)
    _checkins_move(survivor_id=survivor_id, merged_id=merged_id)
    sql(CLOSE_SQL, {"now": now, "tenant": tenant_id, "member": merged_id})
    balance = survivor_balance + loser_balance
    shortfall = survivor_shortfall + loser_shortfall
    paid = min(balance, shortfall)
    account = Account(survivor_id, balance - paid, shortfall - paid)
    core.account_set(tenant_id=tenant_id, account=account, lifetime_delta=loser_lifetime,
                     now=now)
    if not loser_balance and not loser_shortfall:
        return 0
    ref = Ref(MERGE_REF, str(merged_id))
    common = {"tenant_id": tenant_id, "kind": EntryKind.ADJUST, "operator": operator,
              "ref": ref, "now": now}
    core.entry_insert(
        member_id=merged_id, points=-loser_balance, shortfall_delta=-loser_shortfall,
        balance_after=0, reason=_("会员合并：积分转入会员 %(id)s") % {"id": survivor_id},
        key=f"merge:{merged_id}:out", **common)  # fmt: skip
    credit = core.entry_insert(
        member_id=survivor_id, points=loser_balance, shortfall_delta=loser_shortfall,
        balance_after=balance, reason=_("会员合并：积分来自会员 %(id)s") % {"id": merged_id},
        key=f"merge:{merged_id}:in", **common)  # fmt: skip
    if paid:
        core.shortfall_settle(credit=credit, account=account, paid=paid, operator=operator,
                              now=now)
    return loser_balance


def _checkins_move(*, survivor_id: int, merged_id: int) -> None:
    """Check-ins move too, except on days the survivor checked in itself."""
    taken = PointsCheckIn.objects.filter(member_id=survivor_id).values("day")
    PointsCheckIn.objects.filter(member_id=merged_id).exclude(day__in=taken).update(
        member_id=survivor_id)
