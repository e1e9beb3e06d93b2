"""A tenant's points rules: how many points an order earns, and when points expire."""

from datetime import date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from members.models import Member
from points.models import PointsPolicy
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.tenancy import require_tenant_id

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROUNDING = {PointsPolicy.Rounding.FLOOR: ROUND_FLOOR, PointsPolicy.Rounding.ROUND: ROUND_HALF_UP}
POLICY_FIELDS = (
    "points_per_yuan", "rounding", "expiry_mode", "expiry_days", "point_value_fen",
    "daily_earn_cap", "signup_points", "birthday_points", "checkin_points",
    "checkin_streak_days", "checkin_streak_bonus", "review_points", "members_days",
    "members_day_multiplier",
)  # fmt: skip


def policy_get() -> PointsPolicy:
    """The tenant's policy, created with the defaults on first use."""
    policy = PointsPolicy.objects.first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return PointsPolicy.objects.create(tenant_id=require_tenant_id())
    except IntegrityError:  # created concurrently
        return PointsPolicy.objects.get()


@transaction.atomic
def policy_update(*, actor: Actor, changes: dict[str, Any]) -> PointsPolicy:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ApplicationError(_("未知字段：%(names)s") % {"names": ", ".join(sorted(unknown))},
                               code="validation_error")
    policy_get()
    policy = PointsPolicy.objects.select_for_update().get()
    before = {name: _plain(getattr(policy, name)) for name in changes}
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()
    audit_record(actor=actor, action="points.policy_update", target=policy,
                 data={"before": before, "after": {n: _plain(v) for n, v in changes.items()}})
    return policy


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def local_date(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def expiry_for(policy: PointsPolicy, earned_at: datetime) -> datetime:
    """Points earned at ``earned_at`` expire at the start of this day (Asia/Shanghai): the
    day after the last valid one."""
    earned_on = local_date(earned_at)
    if policy.expiry_mode == PointsPolicy.ExpiryMode.DAYS:
        return local_midnight(earned_on + timedelta(days=policy.expiry_days))
    # The end of the year after next: earned in 2026, valid until 31 December 2028.
    return local_midnight(date(earned_on.year + 3, 1, 1))


def points_round(policy: PointsPolicy, value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUNDING[policy.rounding]))


def is_members_day(policy: PointsPolicy, day: date) -> bool:
    """``members_days`` holds "15" (the 15th of every month) or "11-11" (every 11 November)."""
    return any(
        entry == str(day.day) or entry == f"{day.month:02d}-{day.day:02d}"
        for entry in policy.members_days
    )


def points_multiplier(*, member: Member, brand_id: int | None = None) -> Decimal:
    """The member's level multiplier on order points: the level in the brand's own
    programme when the order is at a store of a brand that has one, else the tenant-wide
    programme's; 1× without a level."""
    from points.models import MemberTier

    by_brand = dict(MemberTier.objects.filter(
        member_id=member.pk, level__isnull=False, program__is_active=True,
    ).values_list("program__brand_id", "level__points_multiplier"))
    if brand_id is not None and brand_id in by_brand:
        return by_brand[brand_id]
    return by_brand.get(None, Decimal(1))


def points_for_order(*, policy: PointsPolicy, member: Member, amount_fen: int,
                     paid_at: datetime, brand_id: int | None = None) -> int:
    """Points for an order: yuan × points per yuan × the member's level multiplier × the
    members' day multiplier, rounded once at the end as the policy says."""
    value = (Decimal(amount_fen) / 100 * policy.points_per_yuan
             * points_multiplier(member=member, brand_id=brand_id))
    if is_members_day(policy, local_date(paid_at)):
        value *= policy.members_day_multiplier
    return max(points_round(policy, value), 0)
