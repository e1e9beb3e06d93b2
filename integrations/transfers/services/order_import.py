"""Orders from a file: one row per order line, the order's own columns repeated on each of its
consecutive rows.  Each order is checked by the API's own ``OrderInput`` and a chunk goes
through ``order_ingest_bulk`` (buyers found or created by identity, orders unique per
tenant, channel and order number, member stats kept in step), so importing the same orders
again finds them "existing"."""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from integrations.transfers.models import ImportKind
from integrations.transfers.services import rows as R
from members.api.serializers import OrderInput
from members.models import OrderChannel
from members.services.bulk import order_ingest_bulk
from scrm.access import Actor

# What operators write in a channel column: the value, its label, or a common short name.
ALIASES = {"门店": "pos", "线下": "pos", "store": "pos", "小程序": "miniapp", "商城": "miniapp"}
CHANNELS = {**{alias: value for alias, value in ALIASES.items() if value in OrderChannel.values},
            **{value: value for value in OrderChannel.values},
            **{str(label).lower(): value for value, label in OrderChannel.choices}}


@dataclass
class Order:
    rows: list[R.Row]
    data: dict = field(default_factory=dict)

    @property
    def first(self) -> R.Row:
        return self.rows[0]


def order_key(*, mapping: list[dict], cells: list[str]) -> str:
    """The order a row belongs to (its number), for keeping an order's lines together."""
    for index, entry in enumerate(mapping):
        if entry["field"] == "order_no":
            return cells[index].strip() if index < len(cells) else ""
    return ""


def _channel(row: R.Row, default: str) -> str:
    value = row.values.get("channel", "") or default
    found = CHANNELS.get(value.lower()) if value else None
    if found is None:
        row.fail("channel", "invalid_channel", _("渠道不正确：%(value)s") % {
            "value": value[:32]} if value else _("必填。"))
        return ""
    return found


def _line(row: R.Row) -> dict:
    return {"sku": row.values.get("sku", ""), "product": row.values.get("product", ""),
            "category": row.values.get("category", ""),
            "quantity": R.whole_number(row, "quantity", minimum=1, maximum=100_000,
                                         required=True),
            "price_fen": R.fen(row, "price")}


def _buyer(row: R.Row) -> dict:
    buyer: dict = {"identities": [{"kind": i.kind, "value": i.plain, "app_id": i.app_id}
                                  for i in row.identities]}
    if row.values.get("name"):
        buyer["name"] = R.text(row, "name", 64)
    return buyer


def orders_read(*, mapping: list[dict], options: dict, rows: list[tuple[int, list[str]]]
                ) -> list[Order]:
    """The chunk's rows grouped into orders, each validated (its rows carry the issues)."""
    orders: dict[str, Order] = {}
    for number, cells in rows:
        row = R.row_read(kind=ImportKind.ORDERS, mapping=mapping, number=number, cells=cells)
        key = row.values.get("order_no", "")
        orders.setdefault(key or f"#{number}", Order([])).rows.append(row)
    validator = OrderInput()
    for order in orders.values():
        _validate(order, options, validator)
    return list(orders.values())


def _validate(order: Order, options: dict, validator: OrderInput) -> None:
    head = order.first
    R.require_identity(head)
    raw = {"order_no": head.values.get("order_no", ""),
           "channel": _channel(head, options.get("channel", "")),
           "store": head.values.get("store", ""), "paid_at": R.moment(head, "paid_at"),
           "amount_fen": R.fen(head, "amount"), "buyer": _buyer(head),
           "lines": [_line(row) for row in order.rows]}
    if any(row.issues for row in order.rows):
        return
    try:
        order.data = validator.run_validation(raw)
    except ValidationError as exc:
        for name, reason in _flatten(exc.detail):
            head.fail(name, "invalid", reason)


def _flatten(detail, prefix: str = ""):
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(detail, list) and detail and not isinstance(detail[0], str):
        for index, value in enumerate(detail):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        messages = detail if isinstance(detail, list) else [detail]
        yield prefix, "; ".join(str(m) for m in messages)[:255]


@dataclass
class OrderOutcome:
    created: int = 0
    existing: int = 0
    issues: list[R.Issue] = field(default_factory=list)


def orders_check(orders: list[Order]) -> list[R.Issue]:
    return [issue for order in orders for row in order.rows for issue in row.issues]


def orders_write(*, actor: Actor, orders: list[Order]) -> OrderOutcome:
    outcome = OrderOutcome(issues=orders_check(orders))
    valid = [(index, order.data) for index, order in enumerate(orders)
             if not any(row.issues for row in order.rows)]
    for result in order_ingest_bulk(actor=actor, orders=valid):
        if result["status"] == "created":
            outcome.created += 1
        elif result["status"] == "existing":
            outcome.existing += 1
        else:
            row = orders[result["index"]].first
            outcome.issues.append(R.Issue(row.number, "order_no", result["code"],
                                          result["message"][:255]))
    return outcome
