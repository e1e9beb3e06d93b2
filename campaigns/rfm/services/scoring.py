"""RFM scores from a member's window aggregates, and the cut points they are scored against.

Scores are 1-5.  Cut points are four ascending numbers per dimension:
- R (days since the last order): ``5 - #(cuts the days exceed)``: within the first cut, 5;
- F (orders) and M (fen): ``1 + #(cuts the value reaches)``: from the fourth cut on, 5.
In quintile mode the cuts come from the window's own aggregates: ``percentile_disc`` at
20/40/60/80 % (for F and M, one above it), so members with the same value always share a
score (NTILE would split ties) and every run records the cut points it used."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

FRACTIONS = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class Cuts:
    r: tuple[int, ...]
    f: tuple[int, ...]
    m: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"r": list(self.r), "f": list(self.f), "m": list(self.m)}


def percentile_disc(ordered: Sequence[int], fraction: float) -> int:
    """PostgreSQL's ``percentile_disc``: the first value whose position reaches
    ``fraction`` of the rows (same floating-point arithmetic)."""
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def quintile_cuts(*, days: Sequence[int], frequency: Sequence[int],
                  monetary: Sequence[int]) -> Cuts:
    """Cut points from the (sorted) aggregates, as the database computes them."""
    return cuts_from_percentiles(
        [percentile_disc(days, x) for x in FRACTIONS],
        [percentile_disc(frequency, x) for x in FRACTIONS],
        [percentile_disc(monetary, x) for x in FRACTIONS])


def cuts_from_percentiles(days: Sequence[int], frequency: Sequence[int],
                          monetary: Sequence[int]) -> Cuts:
    """R scores against the percentiles themselves; F and M need to exceed them."""
    return Cuts(tuple(int(x) for x in days), tuple(int(x) + 1 for x in frequency),
                tuple(int(x) + 1 for x in monetary))


def score_r(days: int, cuts: Sequence[int]) -> int:
    return 5 - sum(days > cut for cut in cuts)


def score_up(value: int, cuts: Sequence[int]) -> int:
    return 1 + sum(value >= cut for cut in cuts)
