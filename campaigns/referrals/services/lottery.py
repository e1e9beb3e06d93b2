"""Lotteries (抽奖): prizes with stock and a weight, "thanks for playing", and draws.

A draw is one transaction, taking its locks in one order:

1. the member's participant row, by the conditional update that counts the draw against
   the daily and total limits (so limits hold under concurrent requests, and one member's
   draws run one at a time); a product code (一物一码) instead is claimed by a conditional
   update of its own (``used_at IS NULL``), once;
2. a prize, picked by weight (a winning prize's weight times the member's level
   ``lottery_weight`` when the lottery is tier-weighted; "thanks for playing" keeps its own)
   and taken with ``stock > 0`` in the update, so stock is never oversold; a prize gone
   meanwhile is left out and the pick made again; 409 ``no_stock`` when no prize is left;
3. the draw row, then its points (``points_redeem``, keyed by the draw) and the prize's
   reward (``action_apply``, keyed by the draw).

Anything refused on the way (a limit, no stock, not enough points, a reward that cannot be
given) rolls all of it back: counters, stock, code and points.  The same Idempotency-Key
again answers with the first draw."""

import base64
import random
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.referrals.models import (
    Lottery,
    LotteryCode,
    LotteryDraw,
    LotteryParticipant,
    LotteryPrize,
    RewardKind,
)
from campaigns.referrals.services.common import (
    invalid,
    member_current,
    refuse_unknown,
    reward_validate,
    window_check,
)
from campaigns.services.actions import action_apply
from members.models import Member
from members.services import timeline_add
from points.services import Ref, points_redeem
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record

LOTTERY_FIELDS = ("name", "description", "is_active", "starts_at", "ends_at", "allow_draw",
                  "allow_product_code", "points_cost", "daily_limit", "total_limit",
                  "tier_weighted")
PRIZE_FIELDS = ("id", "name", "kind", "action", "params", "weight", "stock", "is_active")
MAX_PRIZES = 30
MAX_CODES = 10_000
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
REF_TYPE = "lottery"

Kind = LotteryPrize.Kind


# Lotteries and prizes


def _prize_check(index: int, prize: dict[str, Any]) -> dict[str, Any]:
    field = f"prizes[{index}]"
    refuse_unknown(prize, PRIZE_FIELDS)
    kind = prize.get("kind") or Kind.REWARD
    name = str(prize.get("name") or "").strip()
    weight, stock = prize.get("weight", 1), prize.get("stock", 0)
    if kind not in Kind.values or not name:
        raise invalid(_("奖品需要名称和类型。"), field=field, code="invalid_prize")
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise invalid(_("权重须为正整数。"), field=field, code="invalid_prize")
    if not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
        raise invalid(_("库存须为非负整数。"), field=field, code="invalid_prize")
    checked = {"name": name[:64], "kind": kind, "weight": weight,
               "is_active": prize.get("is_active", True), "id": prize.get("id")}
    if kind == Kind.THANKS:
        return {**checked, "action": "", "params": {}, "stock": 0}
    params = reward_validate(prize.get("action"), prize.get("params") or {}, field=field)
    return {**checked, "action": prize["action"], "params": params, "stock": stock}


def prizes_validate(prizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At least one prize to win, at most one "thanks for playing", each prize's reward a
    valid coupon, points or tag action."""
    if len(prizes) > MAX_PRIZES:
        raise invalid(_("最多 %(n)s 个奖品。") % {"n": MAX_PRIZES}, field="prizes",
                      code="invalid_prize")
    checked = [_prize_check(index, prize) for index, prize in enumerate(prizes)]
    active = [prize for prize in checked if prize["is_active"]]
    if not any(prize["kind"] == Kind.REWARD for prize in active):
        raise invalid(_("至少需要一个奖品。"), field="prizes", code="invalid_prize")
    if sum(prize["kind"] == Kind.THANKS for prize in active) > 1:
        raise invalid(_("“谢谢参与”只能有一个。"), field="prizes", code="invalid_prize")
    return checked


def _prizes_save(lottery: Lottery, prizes: list[dict[str, Any]]) -> None:
    """Prizes with an ``id`` are changed (their ``stock`` is what is left), the others made;
    prizes left out are removed, or switched off when someone has drawn them."""
    existing = {prize.pk: prize for prize in lottery.prizes.all()}
    kept = set()
    for position, values in enumerate(prizes):
        prize_id = values.pop("id", None)
        if prize_id is not None and prize_id not in existing:
            raise invalid(_("奖品 %(id)s 不属于该抽奖。") % {"id": prize_id},
                          field=f"prizes[{position}]", code="invalid_prize")
        prize = existing.get(prize_id) or LotteryPrize(tenant_id=lottery.tenant_id,
                                                        lottery=lottery)
        for name, value in values.items():
            setattr(prize, name, value)
        prize.position = position
        prize.save()
        kept.add(prize.pk)
    for prize_id in set(existing) - kept:
        if LotteryDraw.objects.filter(prize_id=prize_id).exists():
            LotteryPrize.objects.filter(pk=prize_id).update(is_active=False)
        else:
            LotteryPrize.objects.filter(pk=prize_id).delete()


@transaction.atomic
def lottery_save(*, actor: Actor, lottery: Lottery | None = None, changes: dict[str, Any],
                 prizes: list[dict[str, Any]] | None = None) -> Lottery:
    """Create a lottery (with its prizes) or change one; ``prizes``, when given, is the
    whole list (see ``_prizes_save``)."""
    refuse_unknown(changes, LOTTERY_FIELDS)
    creating = lottery is None
    if creating and prizes is None:
        raise invalid(_("至少需要一个奖品。"), field="prizes", code="invalid_prize")
    lottery = lottery or Lottery(tenant_id=actor.tenant.pk, created_by=actor.label)
    for name, value in changes.items():
        setattr(lottery, name, value)
    if not (lottery.name or "").strip():
        raise invalid(_("请填写名称。"), field="name")
    window_check(lottery.starts_at, lottery.ends_at)
    checked = prizes_validate(prizes) if prizes is not None else None
    lottery.save()
    if checked is not None:
        _prizes_save(lottery, checked)
    audit_record(actor=actor, action="lottery.create" if creating else "lottery.update",
                 target=lottery, data={"name": lottery.name, "changes": sorted(changes),
                                       "prizes": len(checked) if checked is not None else None})
    return lottery


# Product codes (一物一码)


def _code_normal(code: str) -> str:
    return (code or "").strip().upper()


def lottery_codes_add(*, actor: Actor, lottery: Lottery, codes: list[str]) -> int:
    """Add product codes to the lottery (codes the tenant already has are left as they
    are); how many were added."""
    normalized = list(dict.fromkeys(_code_normal(code) for code in codes))
    if len(normalized) > MAX_CODES:
        raise invalid(_("一次最多 %(n)s 个商品码。") % {"n": MAX_CODES}, field="codes")
    bad = [code for code in normalized if not CODE_PATTERN.match(code)]
    if bad:
        raise invalid(_("商品码格式不正确：%(codes)s") % {"codes": ", ".join(bad[:5])},
                      field="codes", code="invalid_code")
    with transaction.atomic():
        before = LotteryCode.objects.filter(lottery=lottery).count()
        LotteryCode.objects.bulk_create(
            [LotteryCode(tenant_id=lottery.tenant_id, lottery=lottery, code=code)
             for code in normalized], ignore_conflicts=True, batch_size=2000)
        added = LotteryCode.objects.filter(lottery=lottery).count() - before
        audit_record(actor=actor, action="lottery.codes_add", target=lottery,
                     data={"given": len(normalized), "added": added})
    return added


def lottery_codes_generate(*, actor: Actor, lottery: Lottery, count: int) -> list[str]:
    """``count`` new random product codes (12 characters, 60 random bits) for printing."""
    if not isinstance(count, int) or not 1 <= count <= MAX_CODES:
        raise invalid(_("数量须在 1 到 %(n)s 之间。") % {"n": MAX_CODES}, field="count")
    codes = [base64.b32encode(secrets.token_bytes(8)).decode()[:12] for _i in range(count)]
    lottery_codes_add(actor=actor, lottery=lottery, codes=codes)
    return list(LotteryCode.objects.filter(lottery=lottery, code__in=codes).values_list(
        "code", flat=True))


# Odds


def tier_multiplier(*, lottery: Lottery, member_id: int) -> int:
    """The member's best level ``lottery_weight`` (1 without a level, or when the lottery is
    not tier-weighted; a weight of 0 counts as 1)."""
    if not lottery.tier_weighted:
        return 1
    from points.selectors import member_levels

    weights = [level.lottery_weight for level in member_levels(member_id=member_id)]
    return max(max(weights, default=1), 1)


def prize_weights(prizes: list[LotteryPrize], multiplier: int) -> list[int]:
    return [prize.weight * (multiplier if prize.kind == Kind.REWARD else 1) for prize in prizes]


def _pick(prizes: list[LotteryPrize], multiplier: int, rng: random.Random) -> LotteryPrize:
    weights = prize_weights(prizes, multiplier)
    point = rng.random() * sum(weights)
    for prize, weight in zip(prizes, weights, strict=True):
        if point < weight:
            return prize
        point -= weight
    return prizes[-1]


# Draws


@dataclass(frozen=True)
class DrawResult:
    draw: LotteryDraw
    replayed: bool = False


class _KeyTaken(Exception):  # noqa: N818 - a signal to replay, not an error
    pass


def lottery_draw(*, actor: Actor, lottery: Lottery, member: Member, product_code: str = "",
                 idempotency_key: str | None = None, rng: random.Random | None = None,
                 now: datetime | None = None) -> DrawResult:
    """Draw for ``member``: with ``product_code``, the code's entry (once per code);
    otherwise a campaign draw, within the member's limits, for the lottery's points.  409
    ``lottery_not_running``, ``draw_not_allowed``, ``daily_limit_reached``,
    ``total_limit_reached``, ``code_used``, ``no_stock``, ``insufficient_points``,
    ``prize_unavailable``; 400 ``invalid_code``.  ``rng`` is for tests (a seeded
    ``random.Random``); draws use the system's randomness."""
    resolved = member_current(member)
    product_code = _code_normal(product_code)
    request = {"lottery_id": lottery.pk, "member_id": {member.pk, resolved.pk},
               "product_code": product_code}
    earlier = _by_key(idempotency_key)
    if earlier is None:
        try:
            with transaction.atomic():
                return _draw(actor=actor, lottery=lottery, member=resolved,
                             product_code=product_code, key=idempotency_key,
                             rng=rng or secrets.SystemRandom(), now=now or timezone.now())
        except (_KeyTaken, IntegrityError, ApplicationError):
            # A concurrent request with the same key may have drawn meanwhile: its draw is
            # the answer.
            earlier = _by_key(idempotency_key)
            if earlier is None:
                raise
    return _replay(earlier, request)


def _by_key(key: str | None) -> LotteryDraw | None:
    if key is None:
        return None
    return LotteryDraw.objects.select_related("prize").filter(idempotency_key=key).first()


def _replay(earlier: LotteryDraw, request: dict[str, Any]) -> DrawResult:
    if (earlier.lottery_id != request["lottery_id"]
            or earlier.member_id not in request["member_id"]
            or earlier.product_code != request["product_code"]):
        raise ApplicationError(_("该 Idempotency-Key 已用于另一个不同的请求。"),
                               code="idempotency_key_reused", status_code=422)
    return DrawResult(earlier, replayed=True)


def _draw(*, actor: Actor, lottery: Lottery, member: Member, product_code: str,
          key: str | None, rng: random.Random, now: datetime) -> DrawResult:
    lottery = Lottery.objects.get(pk=lottery.pk)
    if not lottery.is_open(now):
        raise Conflict(_("抽奖未在进行中。"), code="lottery_not_running")
    source = LotteryDraw.Source.PRODUCT_CODE if product_code else LotteryDraw.Source.DRAW
    allowed = lottery.allow_product_code if product_code else lottery.allow_draw
    if not allowed:
        raise Conflict(_("该抽奖不支持这种参与方式。"), code="draw_not_allowed")
    _participant_count(lottery=lottery, member=member, source=source,
                       today=timezone.localdate(now))
    if _by_key(key) is not None:  # the same request, ahead of this one on the member's row
        raise _KeyTaken(key)
    if product_code:
        _code_use(lottery=lottery, code=product_code, member=member, now=now)
    multiplier = tier_multiplier(lottery=lottery, member_id=member.pk)
    prize = _prize_take(lottery=lottery, multiplier=multiplier, rng=rng)
    won = prize.kind == Kind.REWARD
    cost = lottery.points_cost if source == LotteryDraw.Source.DRAW else 0
    draw = LotteryDraw.objects.create(
        tenant_id=lottery.tenant_id, lottery=lottery, member=member, prize=prize,
        outcome=LotteryDraw.Outcome.WON if won else LotteryDraw.Outcome.THANKS, source=source,
        product_code=product_code, points_spent=cost, weight_multiplier=multiplier,
        idempotency_key=key, created_at=now)
    if cost:
        points_redeem(actor=actor, member=member, points=cost,
                      reason=_("抽奖：%(name)s") % {"name": lottery.name},
                      ref=Ref("lottery_draw", str(draw.pk)),
                      idempotency_key=f"lottery_draw:{draw.pk}")
    if won:
        draw.reward_outcome = _reward(actor=actor, draw=draw, prize=prize, member=member)
        draw.save(update_fields=["reward_outcome"])
    timeline_add(member=member, kind="lottery.draw", actor=actor.label, occurred_at=now,
                 data={"lottery_id": lottery.pk, "lottery": lottery.name, "prize": prize.name,
                       "outcome": draw.outcome, "source": source, "points": cost})
    return DrawResult(draw)


def _participant_count(*, lottery: Lottery, member: Member, source: str, today) -> None:
    LotteryParticipant.objects.bulk_create(
        [LotteryParticipant(tenant_id=lottery.tenant_id, lottery=lottery, member=member)],
        ignore_conflicts=True)
    row = LotteryParticipant.objects.filter(lottery=lottery, member_id=member.pk)
    if source == LotteryDraw.Source.PRODUCT_CODE:
        row.update(code_draws=F("code_draws") + 1)  # no limit, but the row lock all the same
        return
    within = row
    if lottery.total_limit:
        within = within.filter(draws_total__lt=lottery.total_limit)
    if lottery.daily_limit:
        within = within.filter(Q(day__isnull=True) | ~Q(day=today)
                               | Q(draws_today__lt=lottery.daily_limit))
    counted = within.update(
        draws_total=F("draws_total") + 1, day=today,
        draws_today=Case(When(day=today, then=F("draws_today") + 1), default=Value(1)))
    if counted:
        return
    current = row.get()
    if lottery.total_limit and current.draws_total >= lottery.total_limit:
        raise Conflict(_("抽奖次数已用完（每人 %(n)s 次）。") % {"n": lottery.total_limit},
                       code="total_limit_reached")
    raise Conflict(_("今天的抽奖次数已用完（每天 %(n)s 次）。") % {"n": lottery.daily_limit},
                   code="daily_limit_reached")


def _code_use(*, lottery: Lottery, code: str, member: Member, now: datetime) -> None:
    used = LotteryCode.objects.filter(lottery=lottery, code=code, used_at__isnull=True).update(
        used_at=now, member=member)
    if used:
        return
    if LotteryCode.objects.filter(lottery=lottery, code=code).exists():
        raise Conflict(_("该商品码已使用。"), code="code_used")
    raise invalid(_("商品码无效。"), field="product_code", code="invalid_code")


def _prize_take(*, lottery: Lottery, multiplier: int, rng: random.Random) -> LotteryPrize:
    pool = [prize for prize in lottery.prizes.filter(is_active=True)
            if prize.kind == Kind.THANKS or prize.stock > 0]
    while any(prize.kind == Kind.REWARD for prize in pool):
        prize = _pick(pool, multiplier, rng)
        if prize.kind == Kind.THANKS:
            return prize
        taken = LotteryPrize.objects.filter(pk=prize.pk, stock__gt=0).update(
            stock=F("stock") - 1, awarded=F("awarded") + 1)
        if taken:
            return prize
        pool.remove(prize)  # gone meanwhile: pick again among the rest
    raise Conflict(_("奖品已全部抽完。"), code="no_stock")


def _reward(*, actor: Actor, draw: LotteryDraw, prize: LotteryPrize, member: Member) -> str:
    key = f"lottery_draw:{draw.pk}"
    try:
        outcome = action_apply(actor=actor, kind=prize.action, params=prize.params,
                               members=[member], key_prefix=key,
                               ref=Ref(REF_TYPE, str(draw.lottery_id)))
    except ApplicationError as exc:
        raise Conflict(_("奖品暂时无法发放：%(why)s") % {"why": exc.detail},
                       code="prize_unavailable") from exc
    if prize.action == RewardKind.COUPON:
        from campaigns.coupons.models import Coupon

        if not Coupon.objects.filter(idempotency_key=f"{key}:{member.pk}").exists():
            raise Conflict(_("奖品暂时无法发放：优惠券库存不足或已达领取上限。"),
                           code="prize_unavailable")
    return outcome.get(member.pk, "")
