"""Earn, redeem, adjust, reverse and restore: every change of points is one transaction that
updates the account, appends ledger entries and keeps the lots in step.

Other features build on these: the points mall redeems with ``ref=Ref("mall_order", id)``
and, on a cancellation, calls ``points_restore`` with the same reference; a refunded order's
points go back through ``points_reverse``.
"""

import math
from datetime import datetime
from fractions import Fraction

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from members.models import Member
from points.models import EntryKind, PointsEntry, PointsLot, PointsLotUse
from points.services import core
from points.services.core import NO_REF, PointsResult, Ref
from points.services.expiry import points_expire
from points.services.policy import expiry_for, policy_get
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record


def _expect(member: Member, resolved: Member, **fields) -> dict:
    return {"member_id__in": {member.pk, resolved.pk}, **fields}


def _expire_due(*, tenant_id: int, member: Member, now: datetime) -> None:
    """Write off the member's lots past their expiry before spending, so expired points are
    never spent even when the scheduled job has not reached them yet."""
    if core.lots_due_exist(tenant_id=tenant_id, member_id=member.pk, now=now):
        points_expire(now=now, member_ids=[member.pk])


# Credits


def points_earn(*, actor: Actor, member: Member, points: int, reason: str, ref: Ref = NO_REF,
                idempotency_key: str | None = None, expires_at: datetime | None = None,
                kind: str = EntryKind.EARN) -> PointsResult:
    """Add ``points`` as a new lot (expiring per the policy unless ``expires_at`` is given).
    An account with a shortfall pays it off first."""
    core.require_positive(points)
    resolved = core.member_resolve(member)
    return core.run_idempotent(
        key=idempotency_key,
        expect=_expect(member, resolved, kind=kind, points=points, reason=reason[:255],
                       ref_type=ref.type, ref_id=ref.id),
        attempt=lambda: _credit(actor=actor, member=resolved, points=points, reason=reason,
                                ref=ref, key=idempotency_key, expires_at=expires_at, kind=kind),
    )  # fmt: skip


def _credit(*, actor: Actor, member: Member, points: int, reason: str, ref: Ref,
            key: str | None, expires_at: datetime | None, kind: str) -> PointsResult:
    tenant_id, now = member.tenant_id, core.timestamp()
    expires_at = expires_at or expiry_for(policy_get(), now)
    lifetime = points if kind == EntryKind.EARN else 0
    balance = core.account_credit_fast(tenant_id=tenant_id, member_id=member.pk, points=points,
                                       lifetime=lifetime, now=now)
    if balance is not None:
        entry = core.entry_with_lot_insert(
            tenant_id=tenant_id, member_id=member.pk, kind=kind, points=points,
            balance_after=balance, reason=reason, operator=actor.label, ref=ref, key=key,
            expires_at=expires_at, now=now)  # fmt: skip
        return PointsResult(entry, balance, 0)
    member, account = core.account_lock(tenant_id=tenant_id, member=member)
    paid = min(points, account.shortfall)
    credited = account.balance + points
    account.balance, account.shortfall = credited - paid, account.shortfall - paid
    core.account_set(tenant_id=tenant_id, account=account, lifetime_delta=lifetime, now=now)
    entry = core.entry_insert(
        tenant_id=tenant_id, member_id=member.pk, kind=kind, points=points,
        balance_after=credited, reason=reason, operator=actor.label, ref=ref, key=key, now=now)
    core.lot_create(entry=entry, points=points, expires_at=expires_at)
    if paid:
        core.shortfall_settle(credit=entry, account=account, paid=paid, operator=actor.label,
                              now=now)
    return PointsResult(entry, account.balance, account.shortfall)


# Debits


def points_redeem(*, actor: Actor, member: Member, points: int, reason: str, ref: Ref = NO_REF,
                  idempotency_key: str | None = None,
                  kind: str = EntryKind.REDEEM) -> PointsResult:
    """Spend ``points``, oldest-expiring lots first.  Refused (409 ``insufficient_points``)
    when the balance does not cover them."""
    core.require_positive(points)
    resolved = core.member_resolve(member)
    return core.run_idempotent(
        key=idempotency_key,
        expect=_expect(member, resolved, kind=kind, points=-points, reason=reason[:255],
                       ref_type=ref.type, ref_id=ref.id),
        attempt=lambda: _debit(actor=actor, member=resolved, points=points, reason=reason,
                               ref=ref, key=idempotency_key, kind=kind),
    )  # fmt: skip


def _debit(*, actor: Actor, member: Member, points: int, reason: str, ref: Ref,
           key: str | None, kind: str) -> PointsResult:
    tenant_id, now = member.tenant_id, core.timestamp()
    balance = core.account_debit(tenant_id=tenant_id, member_id=member.pk, points=points,
                                 now=now)
    if balance is None:
        # Not enough, lots to expire first, or an account a merge closed meanwhile.
        member, account = core.account_lock(tenant_id=tenant_id, member=member)
        _expire_due(tenant_id=tenant_id, member=member, now=now)
        balance = core.account_debit(tenant_id=tenant_id, member_id=member.pk, points=points,
                                     now=now)
        if balance is None:
            raise core.insufficient(core.account_read(member_id=member.pk).balance, points)
    entry = core.entry_insert(
        tenant_id=tenant_id, member_id=member.pk, kind=kind, points=-points,
        balance_after=balance, reason=reason, operator=actor.label, ref=ref, key=key, now=now)
    core.lots_consume(entry=entry, points=points)
    return PointsResult(entry, balance, 0)


# Adjustments


def points_adjust(*, actor: Actor, member: Member, points: int, reason: str,
                  idempotency_key: str | None = None, ip: str | None = None) -> PointsResult:
    """A manual correction, up or down, with a reason; written to the audit log.  Taking off
    more than the balance is refused: manual corrections never create a shortfall."""
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise ApplicationError(_("调整积分不能为 0。"), code="invalid_points",
                               fields={"points": [_("不能为 0。")]})
    if not reason.strip():
        raise ApplicationError(_("请填写调整原因。"), code="reason_required",
                               fields={"reason": [_("必填。")]})
    with transaction.atomic():
        if points > 0:
            result = points_earn(actor=actor, member=member, points=points, reason=reason,
                                 idempotency_key=idempotency_key, kind=EntryKind.ADJUST)
        else:
            result = points_redeem(actor=actor, member=member, points=-points, reason=reason,
                                   idempotency_key=idempotency_key, kind=EntryKind.ADJUST)
        if not result.replayed:
            audit_record(actor=actor, action="points.adjust", target=result.entry, ip=ip,
                         data={"member_id": result.entry.member_id, "points": points,
                               "reason": reason, "balance": result.balance})
    return result


# Reversals


def points_reverse(*, actor: Actor, ref: Ref, reason: str, share: Fraction = Fraction(1),
                   points: int | None = None,
                   idempotency_key: str | None = None) -> PointsResult | None:
    """Take back what entries with ``ref`` earned: all of it, ``share`` of it in total (a
    partial refund), or ``points`` more.  The reference's own lots go first, then the
    oldest; what the member already spent comes off the balance, down to 0, and the rest
    becomes a shortfall that later credits pay off.  None when nothing is left to reverse."""
    if points is not None:
        core.require_positive(points)
    if not Fraction(0) < share <= Fraction(1):
        raise ApplicationError(_("冲正比例必须在 0 到 1 之间。"), code="invalid_share")
    return _run_reversal(
        key=idempotency_key, ref=ref,
        attempt=lambda: _reverse(actor=actor, ref=ref, reason=reason, share=share, points=points,
                                 key=idempotency_key),
    )  # fmt: skip


def _run_reversal(*, key, ref: Ref, attempt) -> PointsResult | None:
    try:
        with transaction.atomic():
            return attempt()
    except core.KeyTaken:
        return core.replay(key=key, expect={"ref_type": ref.type, "ref_id": ref.id})


def _key_check(key: str | None) -> None:
    """A reversal computes what is left to do: when its key was used, there is nothing left,
    and the answer is the first one's."""
    if key is not None and PointsEntry.objects.filter(idempotency_key=key).exists():
        raise core.KeyTaken(key)


def _ref_entries(ref: Ref, *kinds: str):
    return PointsEntry.objects.filter(ref_type=ref.type, ref_id=ref.id, kind__in=kinds)


def _earned_outstanding(ref: Ref) -> tuple[int, int]:
    """(points the reference earned, of which not reversed yet)."""
    earned = _ref_entries(ref, EntryKind.EARN).aggregate(total=Sum("points"))["total"] or 0
    reversed_ = _ref_entries(ref, EntryKind.REVERSE).filter(points__lte=0).aggregate(
        total=Sum("shortfall_delta") - Sum("points"))["total"] or 0
    return earned, earned - reversed_


def _reverse(*, actor: Actor, ref: Ref, reason: str, share: Fraction, points: int | None,
             key: str | None) -> PointsResult | None:
    earns = list(_ref_entries(ref, EntryKind.EARN).order_by("id").values_list("id", "member_id"))
    if not earns:
        return None
    member = core.member_reload(earns[0][1])
    tenant_id, now = member.tenant_id, core.timestamp()
    _expire_due(tenant_id=tenant_id, member=member, now=now)
    member, account = core.account_lock(tenant_id=tenant_id, member=member)
    _key_check(key)
    # Under the account lock, so concurrent reversals of one reference see each other.
    earned, outstanding = _earned_outstanding(ref)
    if points is None:
        target = math.floor(earned * share + Fraction(1, 2))  # half up
        points = target - (earned - outstanding)
    points = min(points, outstanding)
    if points <= 0:
        return None
    deducted = min(points, account.balance)
    owed = points - deducted
    account.balance, account.shortfall = account.balance - deducted, account.shortfall + owed
    core.account_set(tenant_id=tenant_id, account=account, lifetime_delta=-points, now=now)
    entry = core.entry_insert(
        tenant_id=tenant_id, member_id=member.pk, kind=EntryKind.REVERSE, points=-deducted,
        shortfall_delta=owed, balance_after=account.balance, reason=reason,
        operator=actor.label, ref=ref, key=key, now=now)  # fmt: skip
    earn_ids = [entry_id for entry_id, _member in earns]
    if deducted:
        core.lots_consume(entry=entry, points=deducted, preferred=earn_ids)
    if points == outstanding:
        # The reference's lots this took the last points of are reversed, not spent.
        PointsLot.objects.filter(
            pk__in=PointsLotUse.objects.filter(entry_id=entry.pk).values("lot_id"),
            source_entry_id__in=earn_ids, status=PointsLot.Status.ACTIVE, remaining=0,
        ).update(status=PointsLot.Status.REVERSED)
    return PointsResult(entry, account.balance, account.shortfall)


def points_restore(*, actor: Actor, ref: Ref, reason: str, points: int | None = None,
                   idempotency_key: str | None = None) -> PointsResult | None:
    """Give back what entries with ``ref`` redeemed (a cancelled redemption): all of it, or
    ``points`` of it, to the lots they came from, latest expiry first.  Points whose lot has
    expired meanwhile are forfeited, as they would have expired unspent.  None when nothing
    is left to give back."""
    if points is not None:
        core.require_positive(points)
    return _run_reversal(
        key=idempotency_key, ref=ref,
        attempt=lambda: _restore(actor=actor, ref=ref, reason=reason, points=points,
                                 key=idempotency_key),
    )  # fmt: skip


def _restore(*, actor: Actor, ref: Ref, reason: str, points: int | None,
             key: str | None) -> PointsResult | None:
    first = _ref_entries(ref, EntryKind.REDEEM).order_by("id").values_list("member_id").first()
    if first is None:
        return None
    member = core.member_reload(first[0])
    tenant_id, now = member.tenant_id, core.timestamp()
    member, account = core.account_lock(tenant_id=tenant_id, member=member)
    _key_check(key)
    entry_ids = _ref_entries(ref, EntryKind.REDEEM, EntryKind.REVERSE).values("id")
    uses = list(
        PointsLotUse.objects.filter(entry_id__in=entry_ids).values("lot_id")
        .annotate(used=Sum("points")).filter(used__gt=0).order_by("-lot__expires_at", "-lot_id")
    )  # fmt: skip
    left = min(points or sum(u["used"] for u in uses), sum(u["used"] for u in uses))
    if left <= 0:
        return None
    lots = PointsLot.objects.select_for_update().in_bulk([u["lot_id"] for u in uses])
    plan = []
    for use in uses:
        give = min(left, use["used"])
        if give:
            plan.append((lots[use["lot_id"]], give))
            left -= give
    restored = sum(give for lot, give in plan if lot.expires_at > now)
    credited = account.balance + restored
    paid = min(restored, account.shortfall)
    account.balance, account.shortfall = credited - paid, account.shortfall - paid
    core.account_set(tenant_id=tenant_id, account=account, now=now)
    forfeited = sum(give for _lot, give in plan) - restored
    note = _("（%(n)s 积分所在批次已过期，不再退回）") % {"n": forfeited} if forfeited else ""
    entry = core.entry_insert(
        tenant_id=tenant_id, member_id=member.pk, kind=EntryKind.REVERSE, points=restored,
        balance_after=credited, reason=f"{reason}{note}", operator=actor.label, ref=ref,
        key=key, now=now)  # fmt: skip
    _lots_give_back(entry=entry, plan=plan, now=now)
    if paid:
        core.shortfall_settle(credit=entry, account=account, paid=paid, operator=actor.label,
                              now=now)
    return PointsResult(entry, account.balance, account.shortfall)


def _lots_give_back(*, entry: PointsEntry, plan: list[tuple[PointsLot, int]],
                    now: datetime) -> None:
    uses = []
    for lot, give in plan:
        if lot.expires_at > now:
            PointsLot.objects.filter(pk=lot.pk).update(
                remaining=lot.remaining + give, status=PointsLot.Status.ACTIVE)
        # A forfeited give-back is recorded too, so it is never given back twice.
        uses.append(PointsLotUse(tenant_id=entry.tenant_id, entry_id=entry.pk, lot_id=lot.pk,
                                 points=-give))
    PointsLotUse.objects.bulk_create(uses)

