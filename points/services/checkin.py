"""Daily check-in (签到): base points every day, and a bonus on every ``checkin_streak_days``-th
consecutive day."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member
from points.models import GrowthSource, PointsCheckIn, PointsPolicy
from points.services import core
from points.services.core import PointsResult, Ref
from points.services.growth import growth_for_activity
from points.services.ledger import points_earn
from points.services.policy import local_date, policy_get
from scrm.access import Actor
from scrm.api.errors import ApplicationError


@dataclass(frozen=True)
class CheckInResult:
    checkin: PointsCheckIn
    balance: int
    created: bool


def checkin_points(policy: PointsPolicy, streak: int) -> int:
    bonus = policy.checkin_streak_bonus if streak % policy.checkin_streak_days == 0 else 0
    return policy.checkin_points + bonus


def points_checkin(*, actor: Actor, member: Member, day: date | None = None) -> CheckInResult:
    """Check the member in for ``day`` (today in Asia/Shanghai by default).  Once per day:
    checking in again answers with the day's first check-in."""
    day = day or local_date(timezone.now())
    member = core.member_resolve(member)
    policy = policy_get()
    if not policy.checkin_points and not policy.checkin_streak_bonus:
        raise ApplicationError(_("未开启签到积分。"), code="checkin_disabled")
    with transaction.atomic():
        existing = PointsCheckIn.objects.filter(member_id=member.pk, day=day).first()
        if existing is not None:
            return CheckInResult(existing, core.account_read(member_id=member.pk).balance, False)
        previous = PointsCheckIn.objects.filter(member_id=member.pk,
                                                day=day - timedelta(days=1)).first()
        streak = previous.streak + 1 if previous is not None else 1
        points = checkin_points(policy, streak)
        result = _earn(actor=actor, member=member, day=day, streak=streak, points=points)
        if result.replayed:  # a concurrent check-in of the same day won
            checkin = PointsCheckIn.objects.get(member_id=member.pk, day=day)
            return CheckInResult(checkin, result.balance, False)
        checkin = PointsCheckIn.objects.create(
            tenant_id=member.tenant_id, member_id=member.pk, day=day, streak=streak,
            points=points, entry_id=result.entry.pk)
        growth_for_activity(actor=actor, member=member, source=GrowthSource.CHECKIN,
                            ref=("checkin", f"{member.pk}:{day.isoformat()}"))
    return CheckInResult(checkin, result.balance, True)


def _earn(*, actor: Actor, member: Member, day: date, streak: int, points: int) -> PointsResult:
    reason = _("签到（连续 %(n)s 天）") % {"n": streak} if streak > 1 else _("签到")
    key = f"checkin:{member.pk}:{day.isoformat()}"
    try:
        return points_earn(actor=actor, member=member, points=points, reason=reason,
                           ref=Ref("checkin", day.isoformat()), idempotency_key=key)
    except ApplicationError as exc:
        if exc.code != "idempotency_key_reused":
            raise
        # The concurrent winner saw another streak; its entry is the day's check-in.
        return core.replay(key=key, expect={})
