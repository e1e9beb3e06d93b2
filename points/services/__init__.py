"""Every write to points.  See ``ledger`` for the core (earn, redeem, adjust, reverse,
restore), ``expiry``, ``rules`` (orders, refunds, sign-up, birthdays, reviews), ``checkin``,
``merge`` and ``policy``."""

from points.services.checkin import CheckInResult, points_checkin
from points.services.core import InsufficientPoints, PointsResult, Ref
from points.services.expiry import points_expire
from points.services.ledger import (
    points_adjust,
    points_earn,
    points_redeem,
    points_restore,
    points_reverse,
)
from points.services.merge import points_merge
from points.services.policy import points_multiplier, policy_get, policy_update
from points.services.rules import (
    points_award_birthdays,
    points_award_order,
    points_award_review,
    points_award_signup,
    points_reverse_refund,
)

__all__ = [
    "CheckInResult",
    "InsufficientPoints",
    "PointsResult",
    "Ref",
    "points_adjust",
    "points_award_birthdays",
    "points_award_order",
    "points_award_review",
    "points_award_signup",
    "points_checkin",
    "points_earn",
    "points_expire",
    "points_merge",
    "points_multiplier",
    "points_redeem",
    "points_restore",
    "points_reverse",
    "points_reverse_refund",
    "policy_get",
    "policy_update",
]
