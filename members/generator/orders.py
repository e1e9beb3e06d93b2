"""Orders of a generated tenant, one chunk of members at a time, drawn with numpy.

The random draws and the arithmetic (channels, times, baskets, discounts, refunds) run
vectorised over the whole chunk; only the text of order numbers, fingerprints and times is
formatted per row.  Orders come out sorted by payment time, numbered in that order, so the
indexes on (tenant, paid_at) and (tenant, channel, order_no) are filled front to back."""

import datetime as dt
import hashlib
from functools import cache

import numpy as np

from members.generator import pools
from members.generator.plan import ORDER_DAYS
from members.generator.rows import (
    ACTOR,
    DAY,
    NULL,
    SHANGHAI,
    ChunkContext,
    OrderChunk,
    columns_payload,
    timestamp,
)

CHANNELS = ("pos", "miniapp", "tmall", "jd", "douyin")
POS, MINIAPP = 0, 1
# Channel mixes (weights in CHANNELS order) for members with and without a home store;
# buyers who came from an online shop mostly buy there.
WITH_STORE = (50, 20, 12, 6, 12)
ONLINE = (0, 35, 30, 15, 20)
LOYAL_SHARE = 0.6
MINIAPP_STORE_SHARE = 0.4  # mini-program orders credited to the member's store (guide sales)
LINES = ((1, 2, 3, 4), (68, 22, 7, 3))  # a basket of about 1.45 lines
QUANTITIES = ((1, 2, 3), (85, 12, 3))
SINGLE_ITEM_PRICE = 100_000  # fen: gift sets and premium bottles sell one at a time
POS_DISCOUNTS = (0, 0, 0, 0, 5)  # percent
ONLINE_DISCOUNTS = (0, 0, 0, 5, 10, 15, 20)
REFUND_RATE = (0.015, 0.04, 0.07, 0.06, 0.09)
FULL_REFUND_SHARE = 0.6
STATUSES = ("paid", "partially_refunded", "refunded")
# Local hour of day, weighted: stores open 10-22, online peaks in the evening.
STORE_HOURS = (0,) * 10 + (3, 5, 6, 6, 7, 8, 8, 7, 6, 8, 9, 8) + (0, 0)
ONLINE_HOURS = (3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 5, 6, 7, 9, 10, 9, 6)


def _draw(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    """Indexes into ``weights``, drawn in proportion to them."""
    cumulative = np.cumsum(weights, dtype=float)
    return np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")


@cache
def _calendar(now: int, catalog: str) -> tuple[int, np.ndarray]:
    """The first day (epoch days, Shanghai) of the order window and the cumulative weights
    of its days: weekends, shopping festivals and a growing business draw more orders."""
    today = (now + SHANGHAI) // DAY
    first = today - ORDER_DAYS
    weights = []
    for day in range(first, today + 1):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        trend = 0.7 + 0.6 * (day - first) / ORDER_DAYS
        weekend = 1.25 if date.weekday() >= 5 else 1.0
        weights.append(trend * weekend * _festival(date, catalog))
    return first, np.cumsum(weights)


def _festival(date: dt.date, catalog: str) -> float:
    month_day = (date.month, date.day)
    peaks = {(11, 11): 6.0, (6, 18): 4.0, (12, 12): 2.5, (5, 20): 2.5}
    if month_day in peaks:
        return peaks[month_day]
    if (11, 1) <= month_day <= (11, 12):
        return 2.0
    if (6, 1) <= month_day <= (6, 20):
        return 1.6
    if catalog == "beauty" and month_day == (3, 8):
        return 3.0  # Women's Day
    if catalog == "liquor" and (date.month == 1 or month_day <= (2, 10)):
        return 2.2  # Spring Festival gifting
    if catalog == "liquor" and date.month == 9:
        return 1.6  # Mid-Autumn
    return 1.0


def _paid_at(rng: np.random.Generator, context: ChunkContext, joined: np.ndarray,
             in_store: np.ndarray) -> np.ndarray:
    """Payment times: a day of the window after the member joined, an hour of that day."""
    first_day, cumulative = _calendar(context.now, context.catalog)
    start = np.clip((joined + SHANGHAI) // DAY - first_day, 0, cumulative.size - 1)
    low = np.where(start > 0, cumulative[start - 1], 0.0)
    day = np.searchsorted(cumulative, low + rng.random(joined.size) * (cumulative[-1] - low))
    day = np.minimum(day, cumulative.size - 1)
    hour = np.where(in_store, _draw(rng, STORE_HOURS, joined.size),
                    _draw(rng, ONLINE_HOURS, joined.size))
    moment = ((first_day + day) * DAY - SHANGHAI
              + ((hour + rng.random(joined.size)) * 3600).astype(np.int64))
    return np.minimum(np.maximum(moment, joined), context.now)


def _order_no(channel: int, number: int, store_code: str, suffix: int) -> str:
    # Numbers rise with the order's place in the run, as the platforms' own do.
    if channel == POS:
        return f"{store_code}{number:010d}"
    if channel == 2:
        return f"3{number:012d}{suffix % 1_000_000:06d}"  # tmall, 19 digits
    if channel == 4:
        return f"69{number:012d}{suffix % 100_000:05d}"  # douyin, 19 digits
    if channel == 3:
        return f"2{number:011d}"  # jd, 12 digits
    return f"WX{number:012d}{suffix % 10_000:04d}"


def _buyer_arrays(chunk: OrderChunk) -> tuple[np.ndarray, ...]:
    """Per order: member id, home store (0: none), join time, shop they came from (-1)."""
    counts = np.asarray(chunk.counts, dtype=np.int64)
    loyal = {name: index for index, name in enumerate(CHANNELS) if index > MINIAPP}
    columns = zip(*((b.id, b.store_id or 0, b.joined_at, loyal.get(b.source_channel, -1))
                    for b in chunk.buyers), strict=True)
    return tuple(np.repeat(np.asarray(column, dtype=np.int64), counts) for column in columns)


def _baskets(rng: np.random.Generator, catalog: str, orders: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order index, product index, quantity) of every line, and each order's list total."""
    products = pools.CATALOGS[catalog].products
    prices = np.asarray([product.price_fen for product in products], dtype=np.int64)
    sizes = np.asarray(LINES[0])[_draw(rng, LINES[1], orders)]
    line_order = np.repeat(np.arange(orders), sizes)
    picked = _draw(rng, [product.popularity for product in products], line_order.size)
    # One line per SKU and order, sorted by order.
    line_order, product = np.divmod(np.unique(line_order * len(products) + picked),
                                    len(products))
    quantity = np.where(prices[product] > SINGLE_ITEM_PRICE, 1,
                        np.asarray(QUANTITIES[0])[_draw(rng, QUANTITIES[1], product.size)])
    gross = np.bincount(line_order, weights=prices[product] * quantity, minlength=orders)
    return line_order, product, quantity, gross.astype(np.int64)


def orders_generate(context: ChunkContext, chunk: OrderChunk) -> dict[str, object]:
    """The chunk's orders in time order, with lines, refunds (and timeline events)."""
    rng = np.random.default_rng([context.seed, 1, chunk.index])
    member, home, joined, loyal = _buyer_arrays(chunk)
    n = member.size
    channel = np.where(home > 0, _draw(rng, WITH_STORE, n), _draw(rng, ONLINE, n))
    channel = np.where((loyal >= 0) & (rng.random(n) < LOYAL_SHARE), loyal, channel)
    store = np.where((channel == POS) | ((channel == MINIAPP)
                                         & (rng.random(n) < MINIAPP_STORE_SHARE)), home, 0)
    paid = _paid_at(rng, context, joined, channel == POS)
    by_time = np.argsort(paid, kind="stable")
    member, channel, store, paid = member[by_time], channel[by_time], store[by_time], paid[
        by_time]

    line_order, product, quantity, gross = _baskets(rng, context.catalog, n)
    discount = np.where(channel == POS, np.asarray(POS_DISCOUNTS)[rng.integers(0, 5, n)],
                        np.asarray(ONLINE_DISCOUNTS)[rng.integers(0, 7, n)])
    amount = gross * (100 - discount) // 100
    refund = (rng.random(n) < np.asarray(REFUND_RATE)[channel]) & (amount > 0)
    full = refund & ((rng.random(n) < FULL_REFUND_SHARE) | (amount < 100))
    partial = np.maximum(1, amount * rng.integers(10, 61, n) // 100)
    refunded = np.where(full, amount, np.where(refund, partial, 0))
    status = np.where(full, 2, np.where(refund, 1, 0))
    received = np.minimum(paid + rng.integers(1, 301, n), context.now)
    refund_at = np.minimum(paid + rng.integers(3600, 10 * DAY + 1, n), context.now)
    ids = (np.arange(chunk.ids.start, chunk.ids.stop) if isinstance(chunk.ids, range)
           else np.asarray(chunk.ids, dtype=np.int64))

    codes = {store.id: store.code for store in context.stores}
    numbers = range(chunk.first_order + 1, chunk.first_order + 1 + n)
    order_no = [_order_no(c, number, codes.get(s, "POS"), suffix) for c, number, s, suffix in
                zip(channel.tolist(), numbers, store.tolist(),
                    rng.integers(0, 1_000_000, n).tolist(), strict=True)]
    channel_names = np.asarray(CHANNELS, dtype=object)[channel].tolist()
    paid_list, member_list, amount_list = paid.tolist(), member.tolist(), amount.tolist()
    fingerprints = [
        hashlib.sha256(f"{c}|{no}|{m}|{p}|{a}".encode()).hexdigest()
        for c, no, m, p, a in zip(channel_names, order_no, member_list, paid_list,
                                  amount_list, strict=True)
    ]
    paid_text = [timestamp(moment) for moment in paid_list]
    tenant = [context.tenant_id] * n
    id_list = ids.tolist()
    result = {
        "order": [id_list, tenant, member_list, channel_names, order_no,
                  [NULL if s == 0 else s for s in store.tolist()], paid_text, amount_list,
                  refunded.tolist(), np.asarray(STATUSES, dtype=object)[status].tolist(),
                  fingerprints, [timestamp(moment) for moment in received.tolist()]],
        "line": _lines(context, ids, line_order, product, quantity),
        "refund": _refunds(context, rng, np.flatnonzero(refund), id_list, order_no,
                           refunded, refund_at),
    }
    payloads = {table: columns_payload(columns, context.as_copy)
                for table, columns in result.items()}
    if context.timeline:
        payloads["timeline"] = columns_payload(_timeline(
            context, id_list, member_list, channel_names, order_no, amount_list, paid_text,
            np.flatnonzero(refund), refunded, refund_at), context.as_copy)
    return payloads


def _lines(context: ChunkContext, ids: np.ndarray, line_order: np.ndarray,
           product: np.ndarray, quantity: np.ndarray) -> list[list]:
    products = pools.CATALOGS[context.catalog].products
    field = {name: np.asarray([getattr(p, name) for p in products], dtype=object)
             for name in ("sku", "name", "category", "price_fen")}
    return [[context.tenant_id] * product.size, ids[line_order].tolist(),
            field["sku"][product].tolist(), field["name"][product].tolist(),
            field["category"][product].tolist(), quantity.tolist(),
            field["price_fen"][product].tolist()]


def _refunds(context: ChunkContext, rng: np.random.Generator, which: np.ndarray,
             id_list: list[int], order_no: list[str], refunded: np.ndarray,
             refund_at: np.ndarray) -> list[list]:
    reasons = np.asarray(pools.REFUND_REASONS, dtype=object)
    positions = which.tolist()
    return [[context.tenant_id] * which.size, [id_list[i] for i in positions],
            [f"RF{order_no[i]}" for i in positions], refunded[which].tolist(),
            reasons[rng.integers(0, reasons.size, which.size)].tolist(),
            [timestamp(moment) for moment in refund_at[which].tolist()]]


def _timeline(context: ChunkContext, id_list: list[int], member_list: list[int],
              channel_names: list[str], order_no: list[str], amount_list: list[int],
              paid_text: list[str], which: np.ndarray, refunded: np.ndarray,
              refund_at: np.ndarray) -> list[list]:
    events = [
        (member, "order.paid", paid,
         f'{{"order_id": {order_id}, "order_no": "{no}", "channel": "{channel}", '
         f'"amount_fen": {amount}}}')
        for order_id, member, channel, no, amount, paid in zip(
            id_list, member_list, channel_names, order_no, amount_list, paid_text,
            strict=True)
    ]
    for i in which.tolist():
        events.append((member_list[i], "order.refunded", timestamp(int(refund_at[i])),
                       f'{{"order_id": {id_list[i]}, "order_no": "{order_no[i]}", '
                       f'"refund_no": "RF{order_no[i]}", "amount_fen": {int(refunded[i])}}}'))
    if not events:
        return [[] for _ in range(6)]
    members, kinds, times, data = (list(column) for column in zip(*events, strict=True))
    return [[context.tenant_id] * len(events), members, kinds, times, data,
            [ACTOR] * len(events)]
