"""Growth value and tier movement.

A member's *qualifying value* in a programme is their growth value, or their spend net of
refunds (fen), over the programme's window (all time when the window is 0).  Upgrades happen
as soon as the value reaches a higher threshold (on every growth entry or order); downgrades
only when the member's review falls due (``tiers_review``), never inside the protection
period after an upgrade, and never while a manual override holds.

Lock order: the member's ``MemberTier`` row, then the member's tags.  The review locks many
rows, in id order.  Every change writes a ``TierChange``, a timeline event, moves the level's
system tag and, after commit, sends ``points.signals.tier_changed``.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member, Order, Refund
from members.services import timeline_add
from points import signals
from points.models import GrowthEntry, GrowthSource, MemberTier, TierChange, TierLevel, TierProgram
from points.services.core import member_resolve
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.events import events_record
from tags.models import MemberTag, Tag
from tags.services.tagging import tag_apply_chunk

CHUNK = 1000


@dataclass(frozen=True)
class GrowthResult:
    entry: GrowthEntry
    growth_total: int
    level: TierLevel | None
    replayed: bool = False


def _levels(program: TierProgram) -> list[TierLevel]:
    return list(TierLevel.objects.filter(program=program).order_by("rank"))


def _target(levels: list[TierLevel], value: int) -> TierLevel | None:
    reached = [level for level in levels if level.threshold <= value]
    return reached[-1] if reached else None


def _since(program: TierProgram, now: datetime) -> datetime | None:
    return now - timedelta(days=program.window_days) if program.window_days else None


def qualifying_values(*, program: TierProgram, member_ids: list[int] | None,
                      now: datetime) -> dict[int, int]:
    """member id → qualifying value, for ``member_ids`` (every member with any when None)."""
    since = _since(program, now)
    if program.basis == TierProgram.Basis.GROWTH:
        rows = GrowthEntry.objects.filter(program=program)
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        total = Sum("points")
    else:
        rows = Order.objects.all()
        if program.brand_id is not None:
            rows = rows.filter(store__brand_id=program.brand_id)
        if since is not None:
            rows = rows.filter(paid_at__gte=since)
        total = Sum(F("amount_fen") - F("refunded_fen"))
    if member_ids is not None:
        rows = rows.filter(member_id__in=member_ids)
    return {member_id: int(value or 0) for member_id, value in
            rows.values("member_id").annotate(value=total).values_list("member_id", "value")}


# The member's standing

def _standing_lock(program: TierProgram, member_id: int) -> MemberTier:
    """The member's row in the programme, locked; created on first use."""
    row = MemberTier.objects.select_for_update().filter(program=program,
                                                        member_id=member_id).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            MemberTier.objects.create(tenant_id=program.tenant_id, program=program,
                                      member_id=member_id)
    except IntegrityError:  # created concurrently
        pass
    return MemberTier.objects.select_for_update().get(program=program, member_id=member_id)


@dataclass
class _Move:
    standing: MemberTier
    old: TierLevel | None
    new: TierLevel | None
    kind: str
    value: int
    reason: str


def _decide(*, program: TierProgram, levels: list[TierLevel], standing: MemberTier, value: int,
            now: datetime, review: bool, protected: bool,
            stepwise: bool = True) -> TierLevel | None | bool:
    """The level the member should move to, or False to stay."""
    if standing.is_override:
        return False
    current = next((level for level in levels if level.pk == standing.level_id), None)
    target = _target(levels, value)
    current_rank, target_rank = (current.rank if current else 0), (target.rank if target else 0)
    if target_rank > current_rank:
        return target
    if not review or target_rank == current_rank or protected:
        return False
    steps = program.max_downgrade_steps if stepwise else 0
    rank = max(target_rank, current_rank - steps) if steps else target_rank
    return next((level for level in levels if level.rank == rank), None)


def _evaluate(*, program: TierProgram, levels: list[TierLevel], standing: MemberTier,
              value: int, now: datetime, review: bool, reason: str) -> _Move | None:
    """Decide and apply (to ``standing``, unsaved) the member's move, if any.  A review may
    move them down (step by step, as the programme says); the end of a manual override puts
    them straight on the level they qualify for; anything may move them up."""
    override_over = standing.is_override and standing.override_until is not None \
        and standing.override_until <= now
    if override_over:
        standing.is_override, standing.override_reason, standing.override_until = False, "", None
    if review or override_over:
        standing.next_review_at = now + timedelta(days=program.review_days)
    protected = not override_over and standing.protected_until is not None \
        and standing.protected_until > now
    decided = _decide(program=program, levels=levels, standing=standing, value=value, now=now,
                      review=review or override_over, protected=protected,
                      stepwise=not override_over)
    if decided is False:
        return None
    old = next((level for level in levels if level.pk == standing.level_id), None)
    up = (decided.rank if decided else 0) > (old.rank if old else 0)
    standing.level = decided
    if up:
        standing.achieved_at = now
        standing.protected_until = now + timedelta(days=program.protection_days)
        standing.next_review_at = now + timedelta(days=program.review_days)
    kind = TierChange.Kind.UPGRADE if up else TierChange.Kind.DOWNGRADE
    return _Move(standing, old, decided, kind, value, reason)


def _record(moves: list[_Move], *, operator: str, now: datetime) -> None:
    """History, timeline, system tags and the domain event for ``moves``."""
    if not moves:
        return
    TierChange.objects.bulk_create([
        TierChange(tenant_id=m.standing.tenant_id, program_id=m.standing.program_id,
                   member_id=m.standing.member_id, from_level=m.old, to_level=m.new,
                   kind=m.kind, qualifying_value=m.value, reason=m.reason[:255],
                   operator=operator[:64], created_at=now)
        for m in moves
    ])
    _tags_move(moves, operator=operator)
    for move in moves:
        timeline_add(member=Member(pk=move.standing.member_id,
                                   tenant_id=move.standing.tenant_id),
                     kind="tier.changed", actor=operator, occurred_at=now,
                     data={"program_id": move.standing.program_id, "change": move.kind,
                           "from": move.old.name if move.old else None,
                           "to": move.new.name if move.new else None,
                           "reason": move.reason})
    events = [(m.standing.tenant_id, m.standing.member_id, m.standing.program_id,
               m.old.pk if m.old else None, m.new.pk if m.new else None, m.kind)
              for m in moves]
    events_record(tenant_id=moves[0].standing.tenant_id, type="tier.changed", occurred_at=now,
                  payloads=[{"member_id": member_id, "program_id": program_id,
                             "from_level_id": from_id, "to_level_id": to_id, "change": kind}
                            for _tenant, member_id, program_id, from_id, to_id, kind in events])
    transaction.on_commit(lambda: _send(events))


def _send(events: list[tuple]) -> None:
    for tenant_id, member_id, program_id, from_id, to_id, kind in events:
        signals.tier_changed.send(sender=TierChange, tenant_id=tenant_id, member_id=member_id,
                                  program_id=program_id, from_level_id=from_id,
                                  to_level_id=to_id, change=kind)


def _tags_move(moves: list[_Move], *, operator: str) -> None:
    numbers = dict(Member.objects.filter(pk__in=[m.standing.member_id for m in moves])
                   .values_list("pk", "member_no"))
    by_tag: dict[tuple[int, str], list[int]] = {}
    for move in moves:
        number = numbers.get(move.standing.member_id)
        if number is None:
            continue
        if move.old and move.old.tag_id:
            by_tag.setdefault((move.old.tag_id, "remove"), []).append(number)
        if move.new and move.new.tag_id:
            by_tag.setdefault((move.new.tag_id, "add"), []).append(number)
    tags = Tag.objects.in_bulk([tag_id for tag_id, _action in by_tag])
    for (tag_id, action), member_nos in sorted(by_tag.items(), key=lambda kv: kv[0][1] != "remove"):
        tag_apply_chunk(tag=tags[tag_id], action=action, member_nos=member_nos, actor=operator,
                        source=MemberTag.Source.SYSTEM)


def _save(standing: MemberTier, now: datetime) -> None:
    standing.updated_at = now
    standing.save(update_fields=["level", "achieved_at", "protected_until", "next_review_at",
                                 "is_override", "override_reason", "override_until",
                                 "growth_total", "updated_at"])


def member_tier_evaluate(*, program: TierProgram, member_id: int, reason: str = "",
                         operator: str = "system", now: datetime | None = None
                         ) -> TierLevel | None:
    """Move the member up if their qualifying value now reaches a higher level (in the
    caller's transaction); returns their level."""
    now = now or timezone.now()
    with transaction.atomic():
        standing = _standing_lock(program, member_id)
        value = qualifying_values(program=program, member_ids=[member_id],
                                  now=now).get(member_id, 0)
        move = _evaluate(program=program, levels=_levels(program), standing=standing,
                         value=value, now=now, review=False, reason=reason or _("达到升级门槛"))
        _save(standing, now)
        _record([move] if move else [], operator=operator, now=now)
    return standing.level


# Growth value

def _growth_points(program: TierProgram, source: str) -> int:
    return {GrowthSource.CHECKIN: program.growth_checkin,
            GrowthSource.REVIEW: program.growth_review,
            GrowthSource.REFERRAL: program.growth_referral}.get(source, 0)


def growth_grant(*, actor: Actor, program: TierProgram, member: Member, points: int,
                 source: str, reason: str = "", ref: tuple[str, str] = ("", ""),
                 idempotency_key: str | None = None) -> GrowthResult:
    """Add (or, negative, take off) growth value, then move the member up if it qualifies
    them.  The same ``idempotency_key`` again answers the first grant."""
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise ApplicationError(_("成长值不能为 0。"), code="invalid_points",
                               fields={"points": [_("必须是非零整数。")]})
    if source not in GrowthSource.values:
        raise ApplicationError(_("未知的成长值来源。"), code="invalid_source",
                               fields={"source": [_("无效。")]})
    member = member_resolve(member)
    now = timezone.now()
    with transaction.atomic():
        standing = _standing_lock(program, member.pk)
        if idempotency_key:
            earlier = GrowthEntry.objects.filter(idempotency_key=idempotency_key).first()
            if earlier is not None:
                return _replay(earlier, program=program, points=points, source=source)
        try:
            with transaction.atomic():
                entry = GrowthEntry.objects.create(
                    tenant_id=program.tenant_id, program=program, member_id=member.pk,
                    points=points, source=source, reason=reason[:255], ref_type=ref[0],
                    ref_id=ref[1], operator=actor.label[:64], idempotency_key=idempotency_key,
                    created_at=now)
        except IntegrityError:  # the key was just taken for another member
            earlier = GrowthEntry.objects.get(idempotency_key=idempotency_key)
            return _replay(earlier, program=program, points=points, source=source)
        standing.growth_total += points
        value = qualifying_values(program=program, member_ids=[member.pk],
                                  now=now).get(member.pk, 0)
        move = _evaluate(program=program, levels=_levels(program), standing=standing,
                         value=value, now=now, review=False, reason=reason or _("达到升级门槛"))
        _save(standing, now)
        _record([move] if move else [], operator=actor.label, now=now)
    return GrowthResult(entry, standing.growth_total, standing.level)


def _replay(entry: GrowthEntry, *, program: TierProgram, points: int,
            source: str) -> GrowthResult:
    if (entry.program_id, entry.points, entry.source) != (program.pk, points, source):
        raise ApplicationError(_("该 Idempotency-Key 已用于另一个不同的请求。"),
                               code="idempotency_key_reused", status_code=422)
    standing = MemberTier.objects.select_related("level").get(program=program,
                                                              member_id=entry.member_id)
    return GrowthResult(entry, standing.growth_total, standing.level, replayed=True)


def growth_for_activity(*, actor: Actor, member: Member, source: str, ref: tuple[str, str],
                        brand_id: int | None = None) -> list[GrowthResult]:
    """The growth a check-in, review or referral earns in each programme that rewards it."""
    from points.services.tiers import programs_for_brand

    results = []
    for program in programs_for_brand(brand_id):
        points = _growth_points(program, source)
        if points:
            results.append(growth_grant(
                actor=actor, program=program, member=member, points=points, source=source,
                ref=ref, idempotency_key=f"growth:{program.pk}:{source}:{ref[1]}"))
    return results


def _order_growth(program: TierProgram, amount_fen: int) -> int:
    value = Decimal(amount_fen) / 100 * program.growth_per_yuan
    return int(value.quantize(Decimal(1), rounding=ROUND_FLOOR))


def tiers_for_order(*, actor: Actor, order: Order) -> None:
    """Growth for a paid order in each programme it counts towards (key per programme and
    order), and the upgrade it may bring; spend-based programmes just re-evaluate."""
    from points.services.tiers import programs_for_brand

    brand_id = order.store.brand_id if order.store_id else None
    member = member_resolve(Member.objects.get(pk=order.member_id))
    for program in programs_for_brand(brand_id):
        if program.basis == TierProgram.Basis.SPEND:
            member_tier_evaluate(program=program, member_id=member.pk, operator=actor.label)
            continue
        points = _order_growth(program, order.amount_fen)
        if points > 0:
            growth_grant(actor=actor, program=program, member=member, points=points,
                         source=GrowthSource.ORDER, reason=_("消费成长值"),
                         ref=("order", str(order.pk)),
                         idempotency_key=f"growth:{program.pk}:order:{order.pk}")
    # Refunds that arrived before this ran found nothing to take back: take it now.
    latest = Refund.objects.filter(order_id=order.pk).order_by("-id").values_list(
        "id", flat=True).first()
    if latest is not None:
        tiers_for_refund(actor=actor, order=order, refund_id=latest)


def tiers_for_refund(*, actor: Actor, order: Order, refund_id: int) -> None:
    """Take back the growth an order earned, in proportion to what has been refunded so far
    (key per programme and refund).  The level is kept until the next review."""
    for program in TierProgram.objects.filter(is_active=True, basis=TierProgram.Basis.GROWTH):
        earned = GrowthEntry.objects.filter(program=program, ref_type="order",
                                            ref_id=str(order.pk))
        granted = earned.filter(source=GrowthSource.ORDER).aggregate(t=Sum("points"))["t"] or 0
        if not granted:
            continue
        taken = -(earned.filter(source=GrowthSource.REVERSE).aggregate(t=Sum("points"))["t"] or 0)
        share = Decimal(min(order.refunded_fen, order.amount_fen)) / max(order.amount_fen, 1)
        due = int((Decimal(granted) * share).quantize(Decimal(1))) - taken
        if due > 0:
            growth_grant(actor=actor, program=program,
                         member=Member.objects.get(pk=order.member_id), points=-due,
                         source=GrowthSource.REVERSE, reason=_("退款扣减成长值"),
                         ref=("order", str(order.pk)),
                         idempotency_key=f"growth:{program.pk}:refund:{refund_id}")


# Overrides

@transaction.atomic
def member_tier_override(*, actor: Actor, program: TierProgram, member: Member,
                         level: TierLevel | None, reason: str, until: datetime | None = None,
                         ip: str | None = None) -> MemberTier:
    """Put the member on ``level`` by hand (None: no level) until ``until`` (or for good);
    reviews leave them there meanwhile.  Audited."""
    if not reason.strip():
        raise ApplicationError(_("请填写调整原因。"), code="reason_required",
                               fields={"reason": [_("必填。")]})
    if level is not None and level.program_id != program.pk:
        raise ApplicationError(_("该等级不属于此等级体系。"), code="invalid_level",
                               fields={"level": [_("无效。")]})
    now = timezone.now()
    if until is not None and until <= now:
        raise ApplicationError(_("有效期必须晚于现在。"), code="invalid_until",
                               fields={"until": [_("必须晚于现在。")]})
    member = member_resolve(member)
    standing = _standing_lock(program, member.pk)
    old = standing.level
    standing.level, standing.is_override = level, True
    standing.override_reason, standing.override_until = reason[:255], until
    standing.achieved_at = now
    _save(standing, now)
    if old != level:
        _record([_Move(standing, old, level, TierChange.Kind.OVERRIDE, 0, reason)],
                operator=actor.label, now=now)
    audit_record(actor=actor, action="tiers.override", target=standing, ip=ip, data={
        "member_id": member.pk, "program_id": program.pk, "from": old.code if old else None,
        "to": level.code if level else None, "reason": reason,
        "until": until.isoformat() if until else None})
    return standing


# Reviews and sweeps

def _chunk_apply(program: TierProgram, levels: list[TierLevel], ids: list[int], *,
                 review: bool, now: datetime) -> int:
    with transaction.atomic():
        standings = list(MemberTier.objects.select_for_update().filter(pk__in=ids)
                         .order_by("pk"))
        values = qualifying_values(program=program,
                                   member_ids=[s.member_id for s in standings], now=now)
        moves = []
        for standing in standings:
            move = _evaluate(program=program, levels=levels, standing=standing,
                             value=values.get(standing.member_id, 0), now=now, review=review,
                             reason=_("定期复核") if review else _("达到升级门槛"))
            if move:
                moves.append(move)
            standing.updated_at = now
        MemberTier.objects.bulk_update(standings, [
            "level", "achieved_at", "protected_until", "next_review_at", "is_override",
            "override_reason", "override_until", "updated_at"])
        _record(moves, operator="system", now=now)
    return len(moves)


def tiers_review(*, program: TierProgram, now: datetime | None = None,
                 on_chunk=None) -> int:
    """Re-evaluate every member whose review is due (or whose override ran out): up or
    down, as the programme says.  Chunked, one transaction each; rerunning finds only what
    is still due.  Returns how many members changed level."""
    now = now or timezone.now()
    levels, changed, after = _levels(program), 0, 0
    due = MemberTier.objects.filter(program=program, next_review_at__lte=now)
    expired = MemberTier.objects.filter(program=program, is_override=True,
                                        override_until__lte=now)
    while True:
        ids = list((due | expired).filter(pk__gt=after).order_by("pk")
                   .values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return changed
        changed += _chunk_apply(program, levels, ids, review=True, now=now)
        after = ids[-1]
        if on_chunk:
            on_chunk(len(ids))


def tiers_sweep(*, program: TierProgram, now: datetime | None = None, on_chunk=None) -> int:
    """Move up every member whose qualifying value reaches a higher level (after the levels
    changed, or for members who were never evaluated); creates the standings it needs.
    Returns how many members changed level."""
    now = now or timezone.now()
    levels = _levels(program)
    if not levels:
        return 0
    values = qualifying_values(program=program, member_ids=None, now=now)
    if levels[0].threshold == 0:  # everyone qualifies for the first level
        members = Member.objects.filter(status=Member.Status.ACTIVE)
        wanted = list(members.values_list("pk", flat=True))
    else:
        wanted = [pk for pk, value in values.items() if value >= levels[0].threshold]
    _standings_ensure(program, wanted)
    changed = 0
    ids = list(MemberTier.objects.filter(program=program, member_id__in=wanted)
               .order_by("pk").values_list("pk", flat=True)) if wanted else []
    for start in range(0, len(ids), CHUNK):
        changed += _chunk_apply(program, levels, ids[start:start + CHUNK], review=False, now=now)
        if on_chunk:
            on_chunk(len(ids[start:start + CHUNK]))
    return changed


def _standings_ensure(program: TierProgram, member_ids: list[int]) -> None:
    for start in range(0, len(member_ids), 10_000):
        MemberTier.objects.bulk_create(
            [MemberTier(tenant_id=program.tenant_id, program=program, member_id=pk)
             for pk in member_ids[start:start + 10_000]],
            ignore_conflicts=True, batch_size=5000)


# Merges

def tiers_merge(*, survivor_id: int, merged_id: int) -> dict[str, Any]:
    """Inside the merge's transaction: the loser's growth entries are copied to the survivor
    (same time, so windows still count them right), its standings dropped with their level
    tags, and the survivor keeps the higher of the two levels."""
    copied, now = 0, timezone.now()
    for standing in MemberTier.objects.select_for_update().filter(member_id=merged_id):
        program = standing.program
        survivor = _standing_lock(program, survivor_id)
        entries = list(GrowthEntry.objects.filter(program=program, member_id=merged_id))
        GrowthEntry.objects.bulk_create([
            GrowthEntry(tenant_id=e.tenant_id, program=program, member_id=survivor_id,
                        points=e.points, source=e.source, reason=e.reason, ref_type="merge",
                        ref_id=str(e.pk), operator="system", created_at=e.created_at)
            for e in entries])
        copied += len(entries)
        survivor.growth_total += standing.growth_total
        ranks = {level.pk: level.rank for level in _levels(program)}
        # The loser's level tag must not move over with its other tags.
        _tags_move([_Move(standing, standing.level, None, "", 0, "")], operator="system")
        if ranks.get(standing.level_id, 0) > ranks.get(survivor.level_id, 0):
            move = _Move(survivor, survivor.level, standing.level, TierChange.Kind.UPGRADE, 0,
                         _("会员合并"))
            survivor.level = standing.level
            survivor.achieved_at = standing.achieved_at
            survivor.protected_until = standing.protected_until
            survivor.next_review_at = standing.next_review_at
            _record([move], operator="system", now=now)
        _save(survivor, now)
        _tags_reconcile(program, survivor_id, survivor.level)
        standing.delete()
    return {"growth_entries": copied}


def _tags_reconcile(program: TierProgram, member_id: int, level: TierLevel | None) -> None:
    """The member carries the tag of ``level`` and no other level tag of the programme
    (a merge may have moved the loser's level tag over before this ran)."""
    number = Member.objects.filter(pk=member_id).values_list("member_no", flat=True).first()
    wanted = level.tag_id if level else None
    for tag in Tag.objects.filter(pk__in=TierLevel.objects.filter(program=program)
                                  .values("tag_id")):
        tag_apply_chunk(tag=tag, action="add" if tag.pk == wanted else "remove",
                        member_nos=[number], actor="system", source=MemberTag.Source.SYSTEM)
