"""The transactional outbox: domain events for partners, written in the transaction of the
change they describe.

Services call ``event_record`` (one event) or ``events_record`` (a chunk of a bulk path, in
one COPY) next to the change, never from ``on_commit``: an event then exists exactly when
its change committed, so a change that rolled back is never announced and a committed one
is never lost.  ``integrations.webhooks`` relays the rows to partners' endpoints.

Payloads carry ids and the facts of the change, never personal data (no phone numbers or
names): a partner reads the rest through the API.  Every event also has ``event_id`` (a
UUID partners dedupe on), ``type``, ``occurred_at`` and the tenant.

``data`` by type (bulk paths write one event per member as well, in one COPY per chunk,
except ``tag.added`` / ``tag.removed`` from bulk tagging and ``points.changed`` from
expiry, which write one event per chunk with ``member_ids``):

- member.created      {"member_id", "member_no", "source_channel"}
- member.updated      {"member_id", "changed": [field, ...]}
- member.merged       {"survivor_id", "merged_id", "reason"}
- order.created       {"order_id", "order_no", "channel", "member_id", "amount_fen", "paid_at"}
- order.refunded      {"order_id", "order_no", "refund_id", "refund_no", "member_id",
                       "amount_fen"}
- points.changed      {"member_id", "entry_id", "kind", "points", "balance_after", "reason",
                       "ref_type", "ref_id"}; expiry: {"kind": "expire", "member_ids"}
- tier.changed        {"member_id", "program_id", "from_level_id", "to_level_id", "change"}
- tag.added/removed   {"member_id", "tag_id", "source"}; bulk: {"tag_id", "source",
                       "member_ids"}
- coupon.issued       {"coupon_id", "template_id", "member_id", "source"}
- coupon.redeemed     {"coupon_id", "member_id", "order_id"}
- follower.subscribed / follower.unsubscribed  {"app_id", "openid", "member_id"}
- campaign.finished   {"campaign_id", "run_id", "status"}

Nothing is written for a tenant none of whose endpoints subscribes to the type: the
subscribed types are cached per tenant for SUBSCRIPTIONS_CACHE_SECONDS and dropped from the
cache whenever an endpoint changes (see ``subscriptions_changed``).
"""

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.db.copy import rows_insert
from scrm.models import OutboxEvent

EVENT_TYPES: dict[str, Any] = {
    "member.created": _("会员创建"),
    "member.updated": _("会员资料变更"),
    "member.merged": _("会员合并"),
    "order.created": _("订单创建"),
    "order.refunded": _("订单退款"),
    "points.changed": _("积分变动"),
    "tier.changed": _("等级变动"),
    "tag.added": _("添加标签"),
    "tag.removed": _("移除标签"),
    "coupon.issued": _("发放优惠券"),
    "coupon.redeemed": _("核销优惠券"),
    "follower.subscribed": _("关注公众号"),
    "follower.unsubscribed": _("取消关注公众号"),
    "campaign.finished": _("营销活动完成"),
}
SUBSCRIPTIONS_CACHE_SECONDS = 30
COLUMNS = ("tenant_id", "event_id", "type", "occurred_at", "data")

# Set by integrations.webhooks at start-up: the types a tenant's endpoints subscribe to.
# Without it (no consumer installed) every event is written.
_subscriptions_loader: Callable[[int], frozenset[str]] | None = None
_relay_hooks: list[Callable[[], None]] = []


def subscriptions_source_set(loader: Callable[[int], frozenset[str]]) -> None:
    global _subscriptions_loader
    _subscriptions_loader = loader


def relay_hook_add(hook: Callable[[], None]) -> None:
    """``hook`` runs after each transaction that wrote events commits (it queues the relay)."""
    if hook not in _relay_hooks:
        _relay_hooks.append(hook)


def _cache_key(tenant_id: int) -> str:
    # The database name keeps test runs sharing one Redis apart.
    return f"outbox:types:{connection.settings_dict['NAME']}:{tenant_id}"


def subscriptions_changed(*, tenant_id: int) -> None:
    """An endpoint of the tenant was created, changed or deleted: forget the cached types
    now (this transaction's later events) and again after commit (other processes')."""
    key = _cache_key(tenant_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def types_wanted(*, tenant_id: int) -> frozenset[str] | None:
    """The types the tenant's endpoints subscribe to, or None for "every type"."""
    if _subscriptions_loader is None:
        return None
    key = _cache_key(tenant_id)
    types = cache.get(key)
    if types is None:
        types = _subscriptions_loader(tenant_id)
        cache.set(key, types, SUBSCRIPTIONS_CACHE_SECONDS)
    return types


def is_wanted(*, tenant_id: int, type: str) -> bool:
    wanted = types_wanted(tenant_id=tenant_id)
    return wanted is None or type in wanted


def _check(type: str) -> None:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")


def _after_commit() -> None:
    for hook in _relay_hooks:
        hook()


def event_record(*, tenant_id: int, type: str, data: dict[str, Any],
                 occurred_at: datetime | None = None) -> OutboxEvent | None:
    """Record one event in the current transaction (None when nobody subscribes to it)."""
    _check(type)
    if not is_wanted(tenant_id=tenant_id, type=type):
        return None
    event = OutboxEvent.objects.create(
        tenant_id=tenant_id, event_id=uuid.uuid4(), type=type,
        occurred_at=occurred_at or timezone.now(), data=data,
    )
    transaction.on_commit(_after_commit)
    return event


def events_record(*, tenant_id: int, type: str, payloads: Sequence[dict[str, Any]],
                  occurred_at: datetime | None = None) -> int:
    """Record one event per payload with one COPY (bulk paths: call once per chunk).
    Returns how many were written."""
    _check(type)
    if not payloads or not is_wanted(tenant_id=tenant_id, type=type):
        return 0
    at = occurred_at or timezone.now()
    rows_insert(model=OutboxEvent, columns=COLUMNS,
                rows=[(tenant_id, str(uuid.uuid4()), type, at, data) for data in payloads])
    transaction.on_commit(_after_commit)
    return len(payloads)
