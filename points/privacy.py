"""The points app's part of a member's personal-data export (erasure keeps the ledger: it is
accounting, and the member row it points at is anonymised)."""

from members.privacy import models_section, personal_data_section
from points.models.ledger import PointsAccount, PointsCheckIn, PointsEntry, PointsLot
from points.models.mall import MallRedemption
from points.models.tiers import GrowthEntry, MemberTier, TierChange


def register() -> None:
    personal_data_section("points", models_section(
        ("accounts", PointsAccount, "member"), ("ledger", PointsEntry, "member"),
        ("lots", PointsLot, "member"), ("check_ins", PointsCheckIn, "member"),
        ("redemptions", MallRedemption, "member")))
    personal_data_section("tiers", models_section(
        ("standings", MemberTier, "member"), ("history", TierChange, "member"),
        ("growth", GrowthEntry, "member")))
