"""Loyalty data: the points ledger, tier programmes and the points mall."""

from points.models.ledger import (
    EntryKind,
    PointsAccount,
    PointsCheckIn,
    PointsEntry,
    PointsLot,
    PointsLotUse,
    PointsPolicy,
)
from points.models.mall import FlashSale, MallItem, MallRedemption
from points.models.tiers import (
    GrowthEntry,
    GrowthSource,
    MemberTier,
    TierChange,
    TierLevel,
    TierProgram,
)

__all__ = [
    "EntryKind",
    "FlashSale",
    "GrowthEntry",
    "GrowthSource",
    "MallItem",
    "MallRedemption",
    "MemberTier",
    "PointsAccount",
    "PointsCheckIn",
    "PointsEntry",
    "PointsLot",
    "PointsLotUse",
    "PointsPolicy",
    "TierChange",
    "TierLevel",
    "TierProgram",
]
