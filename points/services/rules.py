"""Points the policy awards by itself: for paid orders (and back for their refunds), sign-up,
birthdays and reviews.  Each award has a key derived from what caused it, so a task that runs
twice awards once."""

from datetime import date, datetime, time
from fractions import Fraction

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from members.models import Member, Order, Refund
from points.models import EntryKind, PointsEntry, PointsPolicy
from points.services import core
from points.services.core import PointsResult, Ref
from points.services.ledger import points_earn, points_reverse
from points.services.policy import SHANGHAI, local_date, points_for_order, policy_get
from scrm.access import Actor
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id

ORDER_REF = "order"


def system_actor() -> Actor:
    return Actor(tenant=Tenant.objects.get(pk=require_tenant_id()))


def _capped(*, policy: PointsPolicy, member: Member, points: int, now: datetime) -> int:
    """What is left of today's (Asia/Shanghai) cap on order points."""
    if not policy.daily_earn_cap or not points:
        return points
    day_start = datetime.combine(local_date(now), time.min, tzinfo=SHANGHAI)
    today = PointsEntry.objects.filter(
        member_id=member.pk, kind=EntryKind.EARN, ref_type=ORDER_REF, created_at__gte=day_start,
    ).aggregate(total=Sum("points"))["total"] or 0  # fmt: skip
    return max(0, min(points, policy.daily_earn_cap - today))


def points_award_order(*, order: Order, actor: Actor | None = None) -> PointsResult | None:
    """Points for a paid order (key ``order:<id>``), then the reversals of any refunds that
    came first.  Past the daily cap the order earns what is left of it, possibly 0 (a
    0-point entry records that it was considered)."""
    actor = actor or system_actor()
    policy = policy_get()
    key = f"order:{order.pk}"
    with transaction.atomic():
        member = core.member_resolve(Member.objects.get(pk=order.member_id))
        # Under the account lock: a second run of this task (or a concurrent one) sees the
        # first one's entry, and the daily cap counts every order once.
        member, _account = core.account_lock(tenant_id=member.tenant_id, member=member)
        result = None
        if not PointsEntry.objects.filter(idempotency_key=key).exists():
            points = points_for_order(policy=policy, member=member,
                                      amount_fen=order.amount_fen, paid_at=order.paid_at,
                                      brand_id=order.store.brand_id if order.store_id else None)
            points = _capped(policy=policy, member=member, points=points, now=core.timestamp())
            if points:
                result = points_earn(actor=actor, member=member, points=points,
                                     reason=_("订单积分"), ref=Ref(ORDER_REF, str(order.pk)),
                                     idempotency_key=key)
            else:
                _zero_entry(actor=actor, member=member, order=order, key=key)
    for refund_id in Refund.objects.filter(order_id=order.pk).order_by("id").values_list(
            "id", flat=True):
        points_reverse_refund(order=order, refund_id=refund_id, actor=actor)
    return result


def _zero_entry(*, actor: Actor, member: Member, order: Order, key: str) -> None:
    balance = core.account_read(member_id=member.pk).balance
    core.entry_insert(tenant_id=member.tenant_id, member_id=member.pk, kind=EntryKind.EARN,
                      points=0, balance_after=balance, reason=_("订单积分（已达每日上限）"),
                      operator=actor.label, ref=Ref(ORDER_REF, str(order.pk)), key=key,
                      now=core.timestamp())


def points_reverse_refund(*, order: Order, refund_id: int,
                          actor: Actor | None = None) -> PointsResult | None:
    """Take back the order's points in proportion to what has been refunded up to and
    including ``refund_id`` (key ``refund:<id>``).  Cumulative, so refunds handled out of
    order or before the order's points were awarded still end right."""
    refunded = Refund.objects.filter(order_id=order.pk, id__lte=refund_id).aggregate(
        total=Sum("amount_fen"))["total"] or 0
    if not refunded or not order.amount_fen:
        return None
    return points_reverse(
        actor=actor or system_actor(), ref=Ref(ORDER_REF, str(order.pk)),
        reason=_("订单退款"), share=Fraction(min(refunded, order.amount_fen), order.amount_fen),
        idempotency_key=f"refund:{refund_id}",
    )  # fmt: skip


def points_award_signup(*, member: Member) -> PointsResult | None:
    policy = policy_get()
    if not policy.signup_points:
        return None
    return points_earn(actor=system_actor(), member=member, points=policy.signup_points,
                       reason=_("注册奖励"), ref=Ref("signup", str(member.pk)),
                       idempotency_key=f"signup:{member.pk}")


def points_award_review(*, actor: Actor, member: Member, review_id: str) -> PointsResult | None:
    """For the reviews feature: the policy's review points, once per review."""
    from points.models import GrowthSource
    from points.services.growth import growth_for_activity

    policy = policy_get()
    result = None
    with transaction.atomic():  # lock order: the points account, then the tier standing
        if policy.review_points:
            result = points_earn(actor=actor, member=member, points=policy.review_points,
                                 reason=_("评价奖励"), ref=Ref("review", review_id),
                                 idempotency_key=f"review:{review_id}")
        growth_for_activity(actor=actor, member=member, source=GrowthSource.REVIEW,
                            ref=("review", review_id))
    return result


def points_award_birthdays(*, day: date) -> int:
    """Birthday points for the members born on ``day``'s date (29 February birthdays on
    28 February in other years), once per member and year."""
    policy = policy_get()
    by_member = _level_birthday_points()
    if not policy.birthday_points and not by_member:
        return 0
    born = Member.objects.filter(status=Member.Status.ACTIVE, birthday__month=day.month,
                                 birthday__day=day.day)
    if (day.month, day.day) == (2, 28) and not _is_leap(day.year):
        born = born | Member.objects.filter(status=Member.Status.ACTIVE, birthday__month=2,
                                            birthday__day=29)
    actor, awarded = system_actor(), 0
    for member in born.order_by("pk").iterator(chunk_size=1000):
        points = by_member.get(member.pk) or policy.birthday_points
        if not points:
            continue
        result = points_earn(actor=actor, member=member, points=points,
                             reason=_("生日奖励"), ref=Ref("birthday", f"{day.year}"),
                             idempotency_key=f"birthday:{member.pk}:{day.year}")
        awarded += not result.replayed
    return awarded


def _level_birthday_points() -> dict[int, int]:
    """member id → the birthday points their best level gives, where a level sets them (it
    then replaces the policy's)."""
    from django.db.models import Max

    from points.models import MemberTier

    return dict(MemberTier.objects.filter(
        level__birthday_points__gt=0, program__is_active=True,
    ).values("member_id").annotate(points=Max("level__birthday_points"))
        .values_list("member_id", "points"))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
