from campaigns.coupons.services.benefits import coupons_issue_birthdays, coupons_issue_for_mall
from campaigns.coupons.services.bulk import BulkChunk, coupons_issue_bulk
from campaigns.coupons.services.expiry import coupons_expire
from campaigns.coupons.services.issue import coupon_issue
from campaigns.coupons.services.redeem import (
    coupon_cancel,
    coupon_get,
    coupon_redeem,
    discount_for,
)
from campaigns.coupons.services.templates import coupon_template_save, coupon_template_validate

__all__ = [
    "BulkChunk",
    "coupon_cancel",
    "coupon_get",
    "coupon_issue",
    "coupon_redeem",
    "coupon_template_save",
    "coupon_template_validate",
    "coupons_expire",
    "coupons_issue_birthdays",
    "coupons_issue_bulk",
    "coupons_issue_for_mall",
    "discount_for",
]
