"""Domain events of coupons, sent after the transaction commits.  Automation, campaigns and
integrations (a WeChat card message, say) connect to them."""

from django.dispatch import Signal

# Coupons were issued: one send per issue, one per chunk of a bulk issue.
coupon_issued = Signal()  # tenant_id, coupon_ids: list[int]

# A coupon was redeemed (``order_id`` is None for a checkout before the order exists).
coupon_redeemed = Signal()  # tenant_id, coupon_id, order_id
