"""The points mall (积分商城) and flash sales (积分秒杀): the catalogue, redemptions, and their
fulfilment or cancellation; the mall's selectors at the end.

An offer is an item at its regular price, or one of the item's flash sales.  Each offer has
its own price, stock and per-member limit; a limit counts the member's redemptions under
that offer that were not cancelled.  The item's ``is_active`` and tier restriction apply to
both; the item's sale window applies to its regular price, a flash sale has its own.

A redemption is one transaction, taking its locks in the order every points write does: the
member's points account first (it serialises one member's redemptions, so the per-member
limit is checked race-free), then the offer's stock with a conditional update
(``stock >= quantity``), so stock is never oversold; then the order is written and its
points redeemed.  Any refusal rolls all of it back.  A cancellation takes the same order.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member
from members.selectors import member_visible
from points import signals
from points.models import FlashSale, MallItem, MallRedemption, TierLevel
from points.selectors import member_level_codes
from points.services import core
from points.services.core import Ref
from points.services.ledger import points_redeem, points_restore
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record

ITEM_FIELDS = (
    "name", "description", "image_url", "kind", "points", "cash_fen", "stock",
    "per_member_limit", "allowed_tiers", "coupon_template", "starts_at", "ends_at",
    "is_active", "sort_order",
)  # fmt: skip
FLASH_SALE_FIELDS = ("name", "starts_at", "ends_at", "points", "cash_fen", "stock",
                     "per_member_limit", "is_active")
MAX_QUANTITY = 99
MAX_POINTS = 100_000_000  # per redemption, as points/api/serializers.MAX_POINTS
MALL_REF = "mall_order"

Offer = MallItem | FlashSale


@dataclass(frozen=True)
class RedemptionResult:
    redemption: MallRedemption
    balance: int
    replayed: bool = False


class _KeyTaken(Exception):  # noqa: N818 - a signal to roll back and replay, not an error
    """The idempotency key belongs to an earlier redemption."""


def _invalid(fields: dict[str, list[str]], code: str = "validation_error") -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(_("请求数据有误：%(detail)s") % {"detail": first}, code=code,
                            fields=fields)


def _refuse_unknown(changes: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise _invalid({name: [_("未知字段。")] for name in unknown})


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON for the audit log."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items()}


# The catalogue


def mall_item_validate(*, item: MallItem) -> None:
    """Refuse (400) an item that cannot be sold as it stands: cash on anything but a
    points + cash item (or none on one), a sale window that ends before it starts, or tier
    codes no level has."""
    errors: dict[str, list[str]] = {}
    is_points_cash = item.kind == MallItem.Kind.POINTS_CASH
    if is_points_cash and not item.cash_fen:
        errors["cash_fen"] = [_("积分+现金商品须设置现金金额。")]
    elif item.cash_fen and not is_points_cash:
        errors["cash_fen"] = [_("只有积分+现金商品可以设置现金金额。")]
    if item.starts_at and item.ends_at and item.ends_at <= item.starts_at:
        errors["ends_at"] = [_("下架时间须晚于上架时间。")]
    tiers = item.allowed_tiers
    if not isinstance(tiers, list) or not all(isinstance(code, str) for code in tiers):
        errors["allowed_tiers"] = [_("须为等级编码列表。")]
    elif tiers:
        known = set(TierLevel.objects.filter(code__in=tiers).values_list("code", flat=True))
        if unknown := sorted(set(tiers) - known):
            errors["allowed_tiers"] = [_("未知等级：%(codes)s") % {"codes": ", ".join(unknown)}]
    if errors:
        raise _invalid(errors)


@transaction.atomic
def mall_item_create(*, actor: Actor, name: str, points: int, **fields: Any) -> MallItem:
    _refuse_unknown(fields, ITEM_FIELDS)
    item = MallItem(tenant_id=actor.tenant.pk, name=name, points=points, **fields)
    mall_item_validate(item=item)
    item.save()
    audit_record(actor=actor, action="mall.item_create", target=item,
                 data=_plain({n: getattr(item, n) for n in ("name", "kind", "points", "stock")}))
    return item


@transaction.atomic
def mall_item_update(*, actor: Actor, item: MallItem, **changes: Any) -> MallItem:
    """Change an item.  ``stock`` is what is left to sell: set under the item's row lock, so
    it takes effect between two redemptions, never inside one."""
    _refuse_unknown(changes, ITEM_FIELDS)
    item = MallItem.objects.select_for_update().get(pk=item.pk)
    before = {name: getattr(item, name) for name in changes}
    for name, value in changes.items():
        setattr(item, name, value)
    mall_item_validate(item=item)
    item.save()
    audit_record(actor=actor, action="mall.item_update", target=item,
                 data={"before": _plain(before), "after": _plain(changes)})
    return item


def flash_sale_validate(*, flash_sale: FlashSale, item: MallItem) -> None:
    errors: dict[str, list[str]] = {}
    if flash_sale.ends_at <= flash_sale.starts_at:
        errors["ends_at"] = [_("结束时间须晚于开始时间。")]
    if flash_sale.cash_fen and item.kind != MallItem.Kind.POINTS_CASH:
        errors["cash_fen"] = [_("只有积分+现金商品可以设置现金金额。")]
    if errors:
        raise _invalid(errors)


@transaction.atomic
def flash_sale_create(*, actor: Actor, item: MallItem, starts_at: datetime, ends_at: datetime,
                      points: int, stock: int, **fields: Any) -> FlashSale:
    """A flash sale of ``item``: its own window, price, stock (not taken from the item's) and
    per-member limit."""
    _refuse_unknown(fields, FLASH_SALE_FIELDS)
    flash_sale = FlashSale(tenant_id=actor.tenant.pk, item_id=item.pk, starts_at=starts_at,
                           ends_at=ends_at, points=points, stock=stock, **fields)
    flash_sale_validate(flash_sale=flash_sale, item=item)
    flash_sale.save()
    audit_record(actor=actor, action="mall.flash_sale_create", target=flash_sale,
                 data=_plain({n: getattr(flash_sale, n)
                              for n in ("item_id", "starts_at", "ends_at", "points", "stock")}))
    return flash_sale


@transaction.atomic
def flash_sale_update(*, actor: Actor, flash_sale: FlashSale, **changes: Any) -> FlashSale:
    """Change a flash sale (not its item).  ``stock`` is set under the row lock, as for an
    item."""
    _refuse_unknown(changes, FLASH_SALE_FIELDS)
    flash_sale = FlashSale.objects.select_for_update().get(pk=flash_sale.pk)
    before = {name: getattr(flash_sale, name) for name in changes}
    for name, value in changes.items():
        setattr(flash_sale, name, value)
    flash_sale_validate(flash_sale=flash_sale, item=MallItem.objects.get(pk=flash_sale.item_id))
    flash_sale.save()
    audit_record(actor=actor, action="mall.flash_sale_update", target=flash_sale,
                 data={"before": _plain(before), "after": _plain(changes)})
    return flash_sale


# Redemptions


def mall_redeem(*, actor: Actor, member: Member, item: MallItem, quantity: int = 1,
                flash_sale: FlashSale | None = None, address: dict[str, Any] | None = None,
                payment_ref: str = "", idempotency_key: str | None = None) -> RedemptionResult:
    """Redeem ``quantity`` of ``item`` for ``member``, in ``flash_sale`` when given.  Refused,
    with nothing applied, when the offer is not on sale (409 ``item_unavailable``,
    ``flash_sale_not_started``, ``flash_sale_ended``), the member's level may not have it
    (``tier_not_allowed``), their limit is reached (``limit_reached``), stock is short
    (``out_of_stock``) or points are (``insufficient_points``).  The same
    ``idempotency_key`` again answers with the first redemption (``replayed``); with other
    details it is refused (422 ``idempotency_key_reused``)."""
    address = address or {}
    _check_request(item=item, flash_sale=flash_sale, quantity=quantity, payment_ref=payment_ref)
    resolved = core.member_resolve(member)
    request = {"member_id": {member.pk, resolved.pk}, "item_id": item.pk,
               "flash_sale_id": flash_sale.pk if flash_sale else None, "quantity": quantity,
               "payment_ref": payment_ref, "address": address}
    earlier = _by_key(idempotency_key)
    if earlier is None:
        try:
            with transaction.atomic():
                return _redeem(actor=actor, member=resolved, item=item, flash_sale=flash_sale,
                               quantity=quantity, address=address, payment_ref=payment_ref,
                               key=idempotency_key)
        except (_KeyTaken, IntegrityError, ApplicationError):
            # Refused, or the key was taken meanwhile: a concurrent request with the key (or
            # one that got the lock first) may have placed the redemption, and that is the
            # answer.
            earlier = _by_key(idempotency_key)
            if earlier is None:
                raise
    return _replay(earlier, request)


def _by_key(key: str | None) -> MallRedemption | None:
    if key is None:
        return None
    return MallRedemption.objects.filter(idempotency_key=key).first()


def _replay(earlier: MallRedemption, request: dict[str, Any]) -> RedemptionResult:
    if earlier.member_id not in request["member_id"] or any(
            getattr(earlier, name) != value for name, value in request.items()
            if name != "member_id"):
        raise core.key_reused()
    balance = core.account_read(member_id=earlier.member_id).balance
    return RedemptionResult(earlier, balance, replayed=True)


def _offer(item: MallItem, flash_sale: FlashSale | None) -> Offer:
    return item if flash_sale is None else flash_sale


def _check_request(*, item: MallItem, flash_sale: FlashSale | None, quantity: int,
                   payment_ref: str) -> None:
    """What is wrong with the request itself (400), before anything is locked."""
    if (not isinstance(quantity, int) or isinstance(quantity, bool)
            or not 1 <= quantity <= MAX_QUANTITY):
        raise _invalid({"quantity": [_("须为 1 到 %(max)s 之间的整数。") % {"max": MAX_QUANTITY}]},
                       code="invalid_quantity")
    if flash_sale is not None and flash_sale.item_id != item.pk:
        raise _invalid({"flash_sale": [_("该秒杀不属于这个商品。")]}, code="flash_sale_mismatch")
    offer = _offer(item, flash_sale)
    if offer.points * quantity > MAX_POINTS:
        raise _invalid({"quantity": [_("所需积分过多。")]}, code="invalid_quantity")
    if offer.cash_fen and not payment_ref.strip():
        raise _invalid({"payment_ref": [_("积分+现金商品须提供支付单号。")]},
                       code="payment_ref_required")


def _redeem(*, actor: Actor, member: Member, item: MallItem, flash_sale: FlashSale | None,
            quantity: int, address: dict[str, Any], payment_ref: str,
            key: str | None) -> RedemptionResult:
    member, _account = core.account_lock(tenant_id=member.tenant_id, member=member)
    if _by_key(key) is not None:  # the same request, ahead of this one on the lock
        raise _KeyTaken(key)
    now = timezone.now()
    _check_on_sale(item=item, flash_sale=flash_sale, now=now)
    _check_tier(item=item, member=member)
    _check_limit(member=member, item=item, flash_sale=flash_sale, quantity=quantity)
    offer = _offer(item, flash_sale)
    _stock_take(offer=offer, quantity=quantity)
    redemption = MallRedemption.objects.create(
        tenant_id=member.tenant_id, member=member, item=item, flash_sale=flash_sale,
        quantity=quantity, points=offer.points * quantity, cash_fen=offer.cash_fen * quantity,
        payment_ref=payment_ref, address=address, operator=actor.label[:64],
        idempotency_key=key, created_at=now)  # fmt: skip
    result = points_redeem(
        actor=actor, member=member, points=redemption.points,
        reason=_("积分商城兑换：%(name)s × %(n)s") % {"name": item.name, "n": quantity},
        ref=Ref(MALL_REF, str(redemption.pk)), idempotency_key=f"mall:{redemption.pk}")
    redemption.points_entry = result.entry
    redemption.save(update_fields=["points_entry"])
    tenant_id, redemption_id = redemption.tenant_id, redemption.pk
    transaction.on_commit(lambda: signals.mall_redeemed.send(
        sender=MallRedemption, tenant_id=tenant_id, redemption_id=redemption_id))
    return RedemptionResult(redemption, result.balance)


def _check_on_sale(*, item: MallItem, flash_sale: FlashSale | None, now: datetime) -> None:
    if not item.is_active or (flash_sale is not None and not flash_sale.is_active):
        raise Conflict(_("该商品已下架。"), code="item_unavailable")
    if flash_sale is None:
        if (item.starts_at and now < item.starts_at) or (item.ends_at and now >= item.ends_at):
            raise Conflict(_("该商品不在兑换时间内。"), code="item_unavailable")
    elif now < flash_sale.starts_at:
        raise Conflict(_("秒杀尚未开始。"), code="flash_sale_not_started")
    elif now >= flash_sale.ends_at:
        raise Conflict(_("秒杀已结束。"), code="flash_sale_ended")


def _check_tier(*, item: MallItem, member: Member) -> None:
    if item.allowed_tiers and not set(item.allowed_tiers) & member_level_codes(
            member_id=member.pk):
        raise Conflict(_("会员等级不符合兑换条件。"), code="tier_not_allowed")


def _check_limit(*, member: Member, item: MallItem, flash_sale: FlashSale | None,
                 quantity: int) -> None:
    """Race-free under the member's account lock: every redemption of theirs holds it."""
    limit = _offer(item, flash_sale).per_member_limit
    if not limit:
        return
    taken = (MallRedemption.objects
             .filter(member_id=member.pk, item_id=item.pk, flash_sale=flash_sale)
             .exclude(status=MallRedemption.Status.CANCELLED)
             .aggregate(total=Sum("quantity"))["total"] or 0)  # fmt: skip
    if taken + quantity > limit:
        raise Conflict(_("每人限兑 %(limit)s 件，已兑换 %(taken)s 件。")
                       % {"limit": limit, "taken": taken}, code="limit_reached")


def _stock_take(*, offer: Offer, quantity: int) -> None:
    taken = type(offer).objects.filter(pk=offer.pk, stock__gte=quantity).update(
        stock=F("stock") - quantity, sold=F("sold") + quantity)
    if not taken:
        raise Conflict(_("库存不足。"), code="out_of_stock")


def _require_created(redemption: MallRedemption) -> None:
    if redemption.status != MallRedemption.Status.CREATED:
        raise Conflict(_("订单状态为“%(status)s”，不能这样操作。")
                       % {"status": redemption.get_status_display()}, code="invalid_status")


@transaction.atomic
def mall_redemption_fulfil(*, actor: Actor, redemption: MallRedemption,
                           tracking_no: str = "") -> MallRedemption:
    """The gift was shipped (``tracking_no``) or the coupon issued."""
    redemption = MallRedemption.objects.select_for_update().get(pk=redemption.pk)
    _require_created(redemption)
    redemption.status = MallRedemption.Status.FULFILLED
    redemption.tracking_no = tracking_no
    redemption.fulfilled_at = timezone.now()
    redemption.save(update_fields=["status", "tracking_no", "fulfilled_at"])
    audit_record(actor=actor, action="mall.redemption_fulfil", target=redemption,
                 data={"tracking_no": tracking_no})
    return redemption


@transaction.atomic
def mall_redemption_cancel(*, actor: Actor, redemption: MallRedemption,
                           reason: str) -> MallRedemption:
    """Cancel a redemption not fulfilled yet: the stock goes back to its offer and the points
    to the member, to the lots they came from (points whose lot expired meanwhile are
    forfeited, see ``points_restore``)."""
    if not reason.strip():
        raise _invalid({"reason": [_("必填。")]}, code="reason_required")
    # The account first, as a redemption takes them.
    core.account_lock(tenant_id=redemption.tenant_id,
                      member=Member.objects.get(pk=redemption.member_id))
    redemption = MallRedemption.objects.select_for_update().get(pk=redemption.pk)
    _require_created(redemption)
    offer_model, offer_id = ((FlashSale, redemption.flash_sale_id) if redemption.flash_sale_id
                             else (MallItem, redemption.item_id))
    offer_model.objects.filter(pk=offer_id).update(
        stock=F("stock") + redemption.quantity, sold=F("sold") - redemption.quantity)
    points_restore(actor=actor, ref=Ref(MALL_REF, str(redemption.pk)),
                   reason=_("积分商城订单取消：%(reason)s") % {"reason": reason},
                   idempotency_key=f"mall_cancel:{redemption.pk}")
    redemption.status = MallRedemption.Status.CANCELLED
    redemption.cancelled_at = timezone.now()
    redemption.cancel_reason = reason[:255]
    redemption.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    audit_record(actor=actor, action="mall.redemption_cancel", target=redemption,
                 data={"reason": reason, "points": redemption.points})
    return redemption


# Selectors


def mall_item_list(*, on_sale_only: bool = True, kind: str = "",
                   now: datetime | None = None) -> QuerySet[MallItem]:
    """Items with ``current_flash_sales`` (running now, first to start first); only those on
    sale now (active, inside their window) unless ``on_sale_only`` is False."""
    now = now or timezone.now()
    running = FlashSale.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now)
    items = MallItem.objects.prefetch_related(Prefetch(
        "flash_sales", queryset=running.order_by("starts_at", "id"),
        to_attr="current_flash_sales"))
    if on_sale_only:
        items = items.filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now),
                             Q(ends_at__isnull=True) | Q(ends_at__gt=now), is_active=True)
    if kind:
        items = items.filter(kind=kind)
    return items


def flash_sale_list(*, item_id: int | None = None, state: str = "",
                    now: datetime | None = None) -> QuerySet[FlashSale]:
    """Flash sales, of one item or all; ``state``: upcoming, running or ended."""
    now = now or timezone.now()
    sales = FlashSale.objects.select_related("item")
    if item_id is not None:
        sales = sales.filter(item_id=item_id)
    if state == "upcoming":
        sales = sales.filter(starts_at__gt=now)
    elif state == "running":
        sales = sales.filter(starts_at__lte=now, ends_at__gt=now)
    elif state == "ended":
        sales = sales.filter(ends_at__lte=now)
    return sales


def mall_redemption_list(*, actor: Actor,
                         filters: dict[str, Any] | None = None) -> QuerySet[MallRedemption]:
    """The redemptions of the members this actor may see."""
    filters = filters or {}
    redemptions = MallRedemption.objects.select_related("item")
    if actor.guide_id is not None or actor.store_id is not None:
        redemptions = redemptions.filter(member__in=member_visible(actor=actor))
    for name in ("member", "item", "status"):
        if filters.get(name) is not None:
            redemptions = redemptions.filter(**{name: filters[name]})
    return redemptions
