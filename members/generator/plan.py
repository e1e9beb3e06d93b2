"""The deterministic shape of a generated tenant: when each member joined and how many
orders each one places.  Same seed and sizes, same plan: that is what lets an interrupted
run resume chunk by chunk."""

import bisect
import itertools
import random
from dataclasses import dataclass

MEMBER_CHUNK = 20_000  # members per committed chunk
ORDER_CHUNK = 10_000  # members whose orders are committed together
JOIN_DAYS = 3 * 365  # members joined over the last three years...
ORDER_DAYS = 2 * 365  # ...and ordered over the last two
PROPENSITY_SHAPE = 1.6  # Pareto tail of orders per member: many one-off buyers, a few heavy ones
HEAVY_BUYER_FACTOR = 60  # nobody places more than this many times the mean number of orders


@dataclass(frozen=True)
class Plan:
    seed: int
    members: int
    orders: int
    joined_days_ago: list[int]  # by member_no - 1
    order_counts: list[int]  # by member_no - 1
    order_offsets: list[int]  # orders placed by the members before each orders chunk

    @property
    def member_chunks(self) -> int:
        return -(-self.members // MEMBER_CHUNK)

    @property
    def order_chunks(self) -> int:
        return -(-self.members // ORDER_CHUNK)

    def order_chunk_done(self, orders_in_db: int) -> int | None:
        """How many orders chunks ``orders_in_db`` orders amount to, or None when the number
        does not fall on a chunk boundary (the rows were not made by this plan)."""
        position = bisect.bisect_left(self.order_offsets, orders_in_db)
        if position < len(self.order_offsets) and self.order_offsets[position] == orders_in_db:
            # Chunks without any order share a boundary; resume after the last of them.
            while (position + 1 < len(self.order_offsets)
                   and self.order_offsets[position + 1] == orders_in_db
                   and position < self.order_chunks):
                position += 1
            return min(position, self.order_chunks)
        return None


def plan_build(*, seed: int, members: int, orders: int) -> Plan:
    rng = random.Random(f"{seed}:plan")  # noqa: S311 - synthetic data, reproducible by seed
    joined = _join_days(rng, members)
    counts = _order_counts(rng, joined, orders)
    offsets = [0, *itertools.accumulate(
        sum(counts[start:start + ORDER_CHUNK]) for start in range(0, members, ORDER_CHUNK))]
    return Plan(seed, members, orders, joined, counts, offsets)


def _join_days(rng: random.Random, members: int) -> list[int]:
    # The brand grows: a member is about three times as likely to have joined lately as
    # three years ago.  Numbers are handed out as people join, so member 1 joined first.
    triangular = rng.triangular
    return sorted((int(triangular(0, JOIN_DAYS, 0)) for _ in range(members)), reverse=True)


def _order_counts(rng: random.Random, joined: list[int], orders: int) -> list[int]:
    members = len(joined)
    if orders == 0 or members == 0:
        return [0] * members
    pareto, uniform = rng.paretovariate, rng.random
    # Propensity to buy, scaled by how long the member has been able to (tenure).
    weights = [
        (pareto(PROPENSITY_SHAPE) - 0.95) * ((min(days, ORDER_DAYS) + 7) / (ORDER_DAYS + 7))
        for days in joined
    ]
    scale = orders / sum(weights)
    cap = max(int(orders / members * HEAVY_BUYER_FACTOR), -(-orders // members) * 2, 20)
    counts = [min(int(weight * scale + uniform()), cap) for weight in weights]
    _fix_total(rng, counts, weights, orders, cap)
    return counts


def _fix_total(rng: random.Random, counts: list[int], weights: list[float], total: int,
               cap: int) -> None:
    """Add or take single orders, favouring likelier buyers, until the total is exact."""
    cumulative = list(itertools.accumulate(weights))
    population = range(len(counts))
    missing = total - sum(counts)
    while missing:
        step = 1 if missing > 0 else -1
        for index in rng.choices(population, cum_weights=cumulative, k=abs(missing)):
            if (step > 0 and counts[index] < cap) or (step < 0 and counts[index] > 0):
                counts[index] += step
                missing -= step
