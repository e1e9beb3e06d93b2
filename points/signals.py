"""Domain events of the points app.  Higher apps (campaigns, integrations) connect to them;
they are sent after the transaction commits."""

from django.dispatch import Signal

# A points-mall redemption was placed (any kind of item).  The coupons feature issues the
# coupon of a coupon item from here and then fulfils the redemption; until then it stays
# ``created``.  Receivers reload the redemption: it may have been cancelled meanwhile.
mall_redeemed = Signal()  # tenant_id, redemption_id

# A member's level in a tier programme changed (upgrade, downgrade or manual override).
tier_changed = Signal()  # tenant_id, member_id, program_id, from_level_id, to_level_id, change
