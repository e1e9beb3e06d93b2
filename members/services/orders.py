import hashlib
import json
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from members import signals
from members.identities import Identity, normalize_identities
from members.models import Member, Order, OrderLine, Refund, TimelineEvent
from members.services.members import member_upsert, timeline_add
from members.services.stats import member_stats_refresh
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.events import event_record
from scrm.models import Store

INGEST_ATTEMPTS = 3


def order_content_hash(
    data: dict[str, Any], *, identities: Iterable[Identity] | None = None
) -> str:
    """A fingerprint of what the partner sent, to tell a retry from a different order.

    ``identities``: the buyer's identities, already normalised (bulk ingest has them)."""
    if identities is None:
        identities = normalize_identities(data["buyer"]["identities"])
    keys = sorted(i.key for i in identities)
    canonical = {
        "channel": data["channel"],
        "order_no": data["order_no"],
        "store": data.get("store") or "",
        "paid_at": data["paid_at"].astimezone(UTC).isoformat(),
        "amount_fen": data["amount_fen"],
        "buyer": keys,
        "lines": [
            [
                line["sku"],
                line["product"],
                line.get("category", ""),
                line["quantity"],
                line["price_fen"],
            ]
            for line in data["lines"]
        ],
    }
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()


def store_unknown_error(code: str) -> ApplicationError:
    return ApplicationError(
        _("未知门店编码：%(code)s") % {"code": code},
        code="unknown_store",
        fields={"store": [_("未知门店编码")]},
    )


def order_conflict_error(order_no: str) -> Conflict:
    return Conflict(
        _("订单号 %(no)s 已存在，且内容不同。") % {"no": order_no}, code="order_conflict"
    )


def store_by_code(code: str | None) -> Store | None:
    if not code:
        return None
    store = Store.objects.filter(code=code).first()
    if store is None:
        raise store_unknown_error(code)
    return store


def order_event_data(order: Order) -> dict[str, Any]:
    """The ``order.created`` event's payload (scrm/events.py)."""
    return {"order_id": order.pk, "order_no": order.order_no, "channel": order.channel,
            "member_id": order.member_id, "amount_fen": order.amount_fen,
            "paid_at": order.paid_at.isoformat() if hasattr(order.paid_at, "isoformat")
            else order.paid_at}


def _existing(data: dict, content_hash: str) -> Order | None:
    order = Order.objects.filter(channel=data["channel"], order_no=data["order_no"]).first()
    if order is not None and order.content_hash != content_hash:
        raise order_conflict_error(data["order_no"])
    return order


def _order_create(*, actor: Actor, data: dict, content_hash: str) -> Order:
    store = store_by_code(data.get("store"))
    buyer = data["buyer"]
    profile = {key: buyer[key] for key in ("name", "gender", "province", "city") if key in buyer}
    if store is not None:
        profile.setdefault("store", store)
    # What an order says about its buyer fills gaps; it never moves a member to another store.
    member, _outcome = member_upsert(actor=actor, identities=buyer["identities"],
                                     defaults=profile)
    order = Order.objects.create(
        tenant_id=actor.tenant.pk,
        member=member,
        channel=data["channel"],
        order_no=data["order_no"],
        store=store,
        paid_at=data["paid_at"],
        amount_fen=data["amount_fen"],
        content_hash=content_hash,
    )
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                tenant_id=actor.tenant.pk,
                order=order,
                sku=line["sku"],
                product=line["product"],
                category=line.get("category", ""),
                quantity=line["quantity"],
                price_fen=line["price_fen"],
            )
            for line in data["lines"]
        ]
    )
    member_stats_refresh(member_ids=[member.pk])
    timeline_add(
        member=member,
        kind=TimelineEvent.Kind.ORDER_PAID,
        actor=actor.label,
        occurred_at=order.paid_at,
        data={
            "order_id": order.pk,
            "order_no": order.order_no,
            "channel": order.channel,
            "amount_fen": order.amount_fen,
        },
    )
    event_record(tenant_id=order.tenant_id, type="order.created", data=order_event_data(order))
    transaction.on_commit(
        lambda: signals.order_paid.send(
            sender=Order, tenant_id=order.tenant_id, order_ids=[order.pk]
        )
    )
    return order


def order_ingest(*, actor: Actor, data: dict[str, Any]) -> tuple[Order, bool]:
    """Record one order and its buyer.  Idempotent on (channel, order_no): the same order
    again returns the first one (``created`` False); different contents are a conflict."""
    content_hash = order_content_hash(data)
    for attempt in range(INGEST_ATTEMPTS):
        try:
            with transaction.atomic():
                existing = _existing(data, content_hash)
                if existing is not None:
                    return existing, False
                return _order_create(actor=actor, data=data, content_hash=content_hash), True
        except IntegrityError:
            if attempt == INGEST_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def refund_create(
    *, actor: Actor, order: Order, refund_no: str, amount_fen: int, reason: str = ""
) -> tuple[Refund, bool]:
    """Refund part or all of an order.  Idempotent on refund_no; never more than was paid."""
    # The buyer first, then the order: the order merges take their locks in, so a refund
    # racing a merge of its buyer waits for it instead of deadlocking.
    buyer_id = Order.objects.filter(pk=order.pk).values_list("member_id", flat=True).get()
    list(Member.objects.select_for_update().filter(pk=buyer_id).values_list("pk", flat=True))
    order = Order.objects.select_for_update().get(pk=order.pk)
    existing = Refund.objects.filter(order=order, refund_no=refund_no).first()
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise Conflict(
                _("退款单号 %(no)s 已存在，且金额不同。") % {"no": refund_no},
                code="refund_conflict",
            )
        return existing, False
    if amount_fen > order.amount_fen - order.refunded_fen:
        raise ApplicationError(
            _("退款金额超过可退金额（可退 %(left)s 分）。")
            % {"left": order.amount_fen - order.refunded_fen},
            code="refund_exceeds_paid",
            fields={"amount_fen": [_("超过可退金额")]},
        )
    refund = Refund.objects.create(
        tenant_id=order.tenant_id,
        order=order,
        refund_no=refund_no,
        amount_fen=amount_fen,
        reason=reason,
    )
    refunded = order.refunded_fen + amount_fen
    status = (
        Order.Status.REFUNDED if refunded == order.amount_fen else Order.Status.PARTIALLY_REFUNDED
    )
    Order.objects.filter(pk=order.pk).update(
        refunded_fen=F("refunded_fen") + amount_fen, status=status
    )
    member_stats_refresh(member_ids=[order.member_id])
    timeline_add(
        member=Member(pk=order.member_id, tenant_id=order.tenant_id),
        kind=TimelineEvent.Kind.ORDER_REFUNDED,
        actor=actor.label,
        data={
            "order_id": order.pk,
            "order_no": order.order_no,
            "refund_no": refund_no,
            "amount_fen": amount_fen,
        },
    )
    event_record(tenant_id=order.tenant_id, type="order.refunded", data={
        "order_id": order.pk, "order_no": order.order_no, "refund_id": refund.pk,
        "refund_no": refund_no, "member_id": order.member_id, "amount_fen": amount_fen})
    transaction.on_commit(
        lambda: signals.order_refunded.send(
            sender=Order, tenant_id=order.tenant_id, order_id=order.pk, refund_id=refund.pk
        )
    )
    return refund, True
