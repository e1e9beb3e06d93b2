"""Expiry: coupons still unused when their validity ends become ``expired``."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from campaigns.coupons.models import Coupon
from campaigns.coupons.services.common import pk_in

BATCH = 50_000


def coupons_expire(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Expire the tenant's coupons whose validity ended by ``now``, ``batch`` at a time
    (found through the partial index of issued coupons by end of validity), each batch its
    own transaction; returns how many expired.  The update is conditional on ``issued``, so
    a coupon redeemed meanwhile stays redeemed."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(Coupon.objects.filter(status=Coupon.Status.ISSUED, valid_until__lte=now)
                       .order_by("valid_until").values_list("pk", flat=True)[:batch])
            expired += Coupon.objects.filter(pk_in(Coupon, due), status=Coupon.Status.ISSUED
                                             ).update(status=Coupon.Status.EXPIRED)
        if len(due) < batch:
            return expired
