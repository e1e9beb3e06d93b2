"""Reads of points: a member's balance and lots, the ledger, what expires soon, the tenant's
outstanding liability, and the drift check."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone

from members.models import Member
from points.models import PointsAccount, PointsEntry, PointsLot
from points.services.core import ACCOUNT, ENTRY, LOT, sql
from points.services.policy import policy_get
from scrm.tenancy import require_tenant_id

LOTS_SHOWN = 100


def lots_live(*, member: Member) -> QuerySet[PointsLot]:
    """The member's lots with points left, in the order they are spent."""
    return PointsLot.objects.filter(
        member_id=member.pk, status=PointsLot.Status.ACTIVE, remaining__gt=0
    ).order_by("expires_at", "id")


def points_summary(*, member: Member, within_days: int = 30,
                   now: datetime | None = None) -> dict:
    now = now or timezone.now()
    account = PointsAccount.objects.filter(member_id=member.pk).first()
    policy = policy_get()
    balance = account.balance if account else 0
    return {
        "member": member.pk,
        "balance": balance,
        "shortfall": account.shortfall if account else 0,
        "lifetime_earned": account.lifetime_earned if account else 0,
        "value_fen": balance * policy.point_value_fen,
        "lots": list(lots_live(member=member)[:LOTS_SHOWN]),
        "expiring": expiry_schedule(member=member, within_days=within_days, now=now),
        "expiring_soon": {"within_days": within_days,
                          **points_expiring(member=member, within_days=within_days, now=now)},
    }


def ledger_entries(*, member: Member) -> QuerySet[PointsEntry]:
    return PointsEntry.objects.filter(member_id=member.pk)


def points_expiring(*, within_days: int, member: Member | None = None,
                    now: datetime | None = None) -> dict:
    """Points that expire within ``within_days`` (those already due included): for one
    member, or the whole tenant."""
    now = now or timezone.now()
    lots = PointsLot.objects.filter(status=PointsLot.Status.ACTIVE, remaining__gt=0,
                                    expires_at__lt=now + timedelta(days=within_days))
    if member is not None:
        lots = lots.filter(member_id=member.pk)
    totals = lots.aggregate(points=Sum("remaining"), first=Min("expires_at"))
    return {"points": totals["points"] or 0, "first_expires_at": totals["first"]}


def expiry_schedule(*, member: Member, within_days: int,
                    now: datetime | None = None) -> list[dict]:
    """The member's points by expiry time, soonest first, for those expiring within
    ``within_days``: what a reminder or the member's points page lists."""
    now = now or timezone.now()
    return list(
        lots_live(member=member).filter(expires_at__lt=now + timedelta(days=within_days))
        .values("expires_at").annotate(points=Sum("remaining")).order_by("expires_at")
    )  # fmt: skip


def members_expiring(*, within_days: int, now: datetime | None = None) -> QuerySet:
    """Per member: the points expiring within ``within_days`` and the first expiry, for
    reminders (a campaign sends "你有 N 积分将于 … 过期")."""
    now = now or timezone.now()
    return (
        PointsLot.objects.filter(status=PointsLot.Status.ACTIVE, remaining__gt=0,
                                 expires_at__lt=now + timedelta(days=within_days))
        .values("member_id")
        .annotate(points=Sum("remaining"), first_expires_at=Min("expires_at"))
        .order_by("member_id")
    )  # fmt: skip


def points_liability(*, now: datetime | None = None) -> dict:
    """What the tenant owes its members in points, and its value in fen."""
    now = now or timezone.now()
    policy = policy_get()
    accounts = PointsAccount.objects.aggregate(
        points=Sum("balance"), shortfall=Sum("shortfall"),
        members=Count("id", filter=Q(balance__gt=0)),
    )  # fmt: skip
    outstanding = accounts["points"] or 0

    # Both windows in one pass over the lots due within the longer one.
    due = PointsLot.objects.filter(status=PointsLot.Status.ACTIVE, remaining__gt=0,
                                   expires_at__lt=now + timedelta(days=90)).aggregate(
        days_30=Sum("remaining", filter=Q(expires_at__lt=now + timedelta(days=30))),
        days_90=Sum("remaining"))

    def expiring(days: int) -> dict:
        points = due[f"days_{days}"] or 0
        return {"points": points, "value_fen": points * policy.point_value_fen}

    return {
        "outstanding_points": outstanding,
        "outstanding_value_fen": outstanding * policy.point_value_fen,
        "point_value_fen": policy.point_value_fen,
        "members_with_points": accounts["members"],
        "shortfall_points": accounts["shortfall"] or 0,
        "expiring_30_days": expiring(30),
        "expiring_90_days": expiring(90),
        "by_tier": _liability_by_tier(policy.point_value_fen),
        "as_of": now,
    }


def _liability_by_tier(point_value_fen: int) -> list[dict]:
    """Outstanding points per level of the tenant-wide programme (members without a level
    last)."""
    from points.models import TierLevel, TierProgram

    program = TierProgram.objects.filter(brand__isnull=True, is_active=True).first()
    if program is None:
        return []
    # One join rather than a level lookup per account: (tenant, program, member) is unique.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.level_id, SUM(a.balance)::bigint, COUNT(*) FROM points_pointsaccount a "
            "LEFT JOIN points_membertier t ON t.tenant_id = a.tenant_id "
            "AND t.member_id = a.member_id AND t.program_id = %s "
            "WHERE a.tenant_id = %s AND a.balance > 0 GROUP BY t.level_id",
            [program.pk, require_tenant_id()])
        rows = {level: {"points": points, "members": members}
                for level, points, members in cursor.fetchall()}
    levels = [(level.pk, level.code, level.name)
              for level in TierLevel.objects.filter(program=program).order_by("-rank")]
    return [
        {"level": code, "name": name, "members": rows.get(pk, {}).get("members", 0),
         "points": rows.get(pk, {}).get("points", 0),
         "value_fen": rows.get(pk, {}).get("points", 0) * point_value_fen}
        for pk, code, name in [*levels, (None, None, "无等级")]
    ]


@dataclass(frozen=True)
class Drift:
    member_id: int
    balance: int
    ledger_sum: int
    lots_sum: int
    shortfall: int
    ledger_shortfall: int


DRIFT_SQL = f"""
WITH accounts AS (
    SELECT member_id, balance, shortfall FROM {ACCOUNT} WHERE tenant_id = %(tenant)s
), ledger AS (
    SELECT member_id, SUM(points) AS points, SUM(shortfall_delta) AS shortfall
    FROM {ENTRY} WHERE tenant_id = %(tenant)s GROUP BY member_id
), lots AS (
    SELECT member_id, SUM(remaining) AS points FROM {LOT}
    WHERE tenant_id = %(tenant)s AND status = 'active' GROUP BY member_id
)
SELECT COALESCE(a.member_id, l.member_id, t.member_id) AS member_id,
       COALESCE(a.balance, 0), COALESCE(l.points, 0), COALESCE(t.points, 0),
       COALESCE(a.shortfall, 0), COALESCE(l.shortfall, 0)
FROM accounts a
FULL JOIN ledger l ON l.member_id = a.member_id
FULL JOIN lots t ON t.member_id = COALESCE(a.member_id, l.member_id)
WHERE COALESCE(a.balance, 0) <> COALESCE(l.points, 0)
   OR COALESCE(a.balance, 0) <> COALESCE(t.points, 0)
   OR COALESCE(a.shortfall, 0) <> COALESCE(l.shortfall, 0)
ORDER BY 1
"""  # noqa: S608


def ledger_drift() -> list[Drift]:
    """Members whose balance differs from the sum of their ledger or of their live lots, or
    whose shortfall differs from the ledger's.  Empty when the books balance."""
    rows = sql(DRIFT_SQL, {"tenant": require_tenant_id()})
    return [Drift(*(int(value) for value in row)) for row in rows]


def member_levels(*, member_id: int) -> list:
    """The member's current level in each active programme (TierLevel rows, programme
    loaded), tenant-wide programme first."""
    from points.models import MemberTier, TierLevel

    level_ids = MemberTier.objects.filter(
        member_id=member_id, level__isnull=False, program__is_active=True
    ).values("level_id")
    return list(TierLevel.objects.filter(pk__in=level_ids).select_related("program")
                .order_by("program__brand_id", "rank"))


def member_level_codes(*, member_id: int) -> set[str]:
    """Codes of the member's current levels, for tier-restricted offers."""
    return {level.code for level in member_levels(member_id=member_id)}


HISTORY_SHOWN = 20
DEFAULT_BENEFITS = {
    "discount_percent": 100, "points_multiplier": Decimal(1), "birthday_points": 0,
    "birthday_coupon": "", "free_shipping": False, "exclusive_coupons": [],
    "lottery_weight": 1, "priority_service": False,
}  # fmt: skip


def _brief(level) -> dict | None:
    return None if level is None else {"id": level.pk, "code": level.code, "name": level.name,
                                       "rank": level.rank}


def member_standings(*, member_id: int, now: datetime | None = None) -> list[dict]:
    """The member's standing in every active programme: level, qualifying value, what the
    next level needs, review dates, override, and the latest changes."""
    from points.models import MemberTier, TierChange, TierLevel, TierProgram
    from points.services.growth import qualifying_values

    now = now or timezone.now()
    standings = {s.program_id: s for s in MemberTier.objects.filter(member_id=member_id)
                 .select_related("level")}
    result = []
    for program in TierProgram.objects.filter(is_active=True).order_by("brand_id", "pk"):
        levels = list(TierLevel.objects.filter(program=program).order_by("rank"))
        standing = standings.get(program.pk) or MemberTier(program=program, member_id=member_id)
        value = qualifying_values(program=program, member_ids=[member_id],
                                  now=now).get(member_id, 0)
        rank = standing.level.rank if standing.level else 0
        following = next((level for level in levels if level.rank > rank), None)
        history = TierChange.objects.filter(member_id=member_id, program=program).select_related(
            "from_level", "to_level").order_by("-created_at", "-id")[:HISTORY_SHOWN]
        result.append({
            "program": program, "level": _brief(standing.level),
            "growth_total": standing.growth_total, "qualifying_value": value,
            "next_level": _brief(following),
            "to_next_level": max(following.threshold - value, 0) if following else None,
            "achieved_at": standing.achieved_at, "protected_until": standing.protected_until,
            "next_review_at": standing.next_review_at, "is_override": standing.is_override,
            "override_reason": standing.override_reason,
            "override_until": standing.override_until,
            "history": [{"kind": c.kind, "from_level": _brief(c.from_level),
                         "to_level": _brief(c.to_level), "qualifying_value": c.qualifying_value,
                         "reason": c.reason, "operator": c.operator,
                         "created_at": c.created_at} for c in history],
        })
    return result


def member_benefits(*, member_id: int) -> dict:
    """The benefits of the member's level in each active programme, and those of the
    tenant-wide programme (or the defaults, without a level) as the headline."""
    from points.models import TierProgram

    levels = {level.program_id: level for level in member_levels(member_id=member_id)}
    programs = []
    for program in TierProgram.objects.filter(is_active=True).select_related("brand").order_by(
            "brand_id", "pk"):
        level = levels.get(program.pk)
        programs.append({
            "program": program.pk, "program_name": program.name,
            "brand": program.brand.code if program.brand else None, "level": _brief(level),
            "benefits": _benefits(level),
        })
    headline = next((p for p in programs if p["brand"] is None), None)
    return {"member": member_id, "level": headline["level"] if headline else None,
            "benefits": headline["benefits"] if headline else dict(DEFAULT_BENEFITS),
            "programs": programs}


def _benefits(level) -> dict:
    if level is None:
        return dict(DEFAULT_BENEFITS)
    return {name: getattr(level, name) for name in DEFAULT_BENEFITS}
