"""Opening points balances (期初积分) for a chunk of imported members, set-based.

Each grant is an ``earn`` entry whose idempotency key is derived from the member
(``import:opening:<member id>``), so a member gets one opening balance however many files or
re-runs carry it.  Members whose account owes nothing (or who have none yet) are credited in
a handful of statements: the accounts are created and locked in member-id order (as every
points write locks them), entries claim their keys (``ON CONFLICT DO NOTHING``), then lots
and balances follow for the entries that went in.  An account with a shortfall, or closed by
a merge, goes through ``points_earn``, which settles it.  Runs in the caller's transaction.
"""

from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext as _

from members.models import Member
from points.models import EntryKind, PointsAccount, PointsEntry
from points.services import core
from points.services.ledger import points_earn
from points.services.policy import expiry_for, policy_get
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.db.copy import planner_stats_refresh

REASON = "期初积分（导入）"
REF = core.Ref("import", "opening")
ENTRY, LOT, ACCOUNT = core.ENTRY, core.LOT, core.ACCOUNT

ENSURE_SQL = f"""
INSERT INTO {ACCOUNT} (tenant_id, member_id, balance, shortfall, lifetime_earned, is_active,
                       created_at, updated_at)
SELECT tenant_id, id, 0, 0, 0, true, now(), now() FROM {Member._meta.db_table}
WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id
FOR KEY SHARE
ON CONFLICT (tenant_id, member_id) DO NOTHING
"""  # noqa: S608
LOCK_SQL = f"""
SELECT member_id, balance, shortfall, is_active FROM {ACCOUNT}
WHERE tenant_id = %s AND member_id = ANY(%s) ORDER BY member_id FOR UPDATE
"""  # noqa: S608
ENTRIES_SQL = f"""
INSERT INTO {ENTRY} (tenant_id, member_id, kind, points, balance_after, shortfall_delta,
                     reason, ref_type, ref_id, operator, idempotency_key, created_at)
SELECT %s, v.member_id, 'earn', v.points, v.balance_after, 0, %s, 'import', %s, %s,
       'import:opening:' || v.member_id, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v (member_id, points, balance_after)
ON CONFLICT ON CONSTRAINT points_entry_idem_uniq DO NOTHING
RETURNING id, member_id, points
"""  # noqa: S608
LOTS_SQL = f"""
INSERT INTO {LOT} (tenant_id, member_id, earned, remaining, earned_at, expires_at,
                   source_entry_id, status)
SELECT %s, v.member_id, v.points, v.points, %s, %s, v.entry_id, 'active'
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v (entry_id, member_id, points)
"""  # noqa: S608
CREDIT_SQL = f"""
UPDATE {ACCOUNT} a SET balance = a.balance + v.points,
    lifetime_earned = a.lifetime_earned + v.points, updated_at = %s
FROM unnest(%s::bigint[], %s::bigint[]) AS v (member_id, points)
WHERE a.tenant_id = %s AND a.member_id = v.member_id
"""  # noqa: S608


@dataclass(frozen=True)
class Grant:
    row: int
    member_id: int
    points: int


def opening_key(member_id: int) -> str:
    return f"import:opening:{member_id}"


def opening_balances_grant(*, actor: Actor, grants: list[Grant]
                           ) -> tuple[int, list[tuple[Grant, ApplicationError]]]:
    """Grant each member's opening balance once: (how many were granted now, the grants
    refused).  A member already holding an opening balance of the same amount is left as is;
    one of another amount is refused, never granted twice."""
    by_member: dict[int, Grant] = {}
    for grant in grants:
        if grant.points > 0:
            by_member.setdefault(grant.member_id, grant)
    if not by_member:
        return 0, []
    if connection.vendor != "postgresql":
        return _one_by_one(actor, list(by_member.values()))
    tenant_id, now = actor.tenant.pk, core.timestamp()
    ids = sorted(by_member)
    planner_stats_refresh(PointsAccount)  # looked up by member per chunk, grown by imports
    with connection.cursor() as cursor:
        cursor.execute(ENSURE_SQL, [tenant_id, ids])
        cursor.execute(LOCK_SQL, [tenant_id, ids])
        accounts = {row[0]: row[1:] for row in cursor.fetchall()}
    fast = [m for m in ids if m in accounts and accounts[m][1] == 0 and accounts[m][2]]
    granted = _fast(actor, [by_member[m] for m in fast], {m: accounts[m][0] for m in fast},
                    now=now)
    quick = set(fast)
    slow = [by_member[m] for m in ids if m not in quick]
    slow_granted, refused = _one_by_one(actor, slow)
    refused += _repeats({m: by_member[m] for m in fast}, granted)
    return len(granted) + slow_granted, refused


def _fast(actor: Actor, grants: list[Grant], balances: dict[int, int], *, now) -> set[int]:
    if not grants:
        return set()
    tenant_id = actor.tenant.pk
    expires_at = expiry_for(policy_get(), now)
    members = [g.member_id for g in grants]
    amounts = [g.points for g in grants]
    after = [balances[g.member_id] + g.points for g in grants]
    with connection.cursor() as cursor:
        cursor.execute(ENTRIES_SQL, [tenant_id, REASON, REF.id, actor.label[:64], now,
                                     members, amounts, after])
        entries = cursor.fetchall()
        if entries:
            cursor.execute(LOTS_SQL, [tenant_id, now, expires_at, [e[0] for e in entries],
                                      [e[1] for e in entries], [e[2] for e in entries]])
            cursor.execute(CREDIT_SQL, [now, [e[1] for e in entries], [e[2] for e in entries],
                                        tenant_id])
    granted = {entry[1] for entry in entries}
    if granted:
        core.balance_changed(tenant_id=tenant_id, member_ids=sorted(granted))
    return granted


def _repeats(by_member: dict[int, Grant], granted: set[int]
             ) -> list[tuple[Grant, ApplicationError]]:
    """Grants whose key was already taken: fine when for the same amount."""
    waiting = {m: g for m, g in by_member.items() if m not in granted}
    if not waiting:
        return []
    held = dict(PointsEntry.objects.filter(
        idempotency_key__in=[opening_key(m) for m in waiting]).values_list("member_id",
                                                                            "points"))
    return [(grant, _different(grant, held[m])) for m, grant in waiting.items()
            if m in held and held[m] != grant.points]


def _different(grant: Grant, held: int) -> ApplicationError:
    return ApplicationError(
        _("该会员已导入过期初积分 %(held)s，未再次发放 %(points)s。") % {
            "held": held, "points": grant.points}, code="opening_balance_exists")


def _one_by_one(actor: Actor, grants: list[Grant]
                ) -> tuple[int, list[tuple[Grant, ApplicationError]]]:
    granted, refused = 0, []
    members = Member.objects.in_bulk([g.member_id for g in grants])
    for grant in grants:
        try:
            result = points_earn(actor=actor, member=members[grant.member_id],
                                 points=grant.points, reason=REASON,
                                 ref=REF, kind=EntryKind.EARN,
                                 idempotency_key=opening_key(grant.member_id))
        except ApplicationError as exc:
            if exc.code != "idempotency_key_reused":
                raise
            held = PointsEntry.objects.filter(
                idempotency_key=opening_key(grant.member_id)).values_list(
                "points", flat=True).first()
            if held != grant.points:
                refused.append((grant, _different(grant, held or 0)))
            continue
        granted += not result.replayed
    return granted, refused
