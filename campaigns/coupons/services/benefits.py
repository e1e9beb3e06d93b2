"""Coupons other apps promise: the points mall's coupon items, and the birthday coupon of a
member's level."""

import calendar
import logging
from datetime import date

from django.db import transaction
from django.db.models import F, Q

from campaigns.coupons.models import Coupon, CouponSource, CouponTemplate
from campaigns.coupons.services.common import system_actor
from campaigns.coupons.services.issue import coupon_issue
from members.models import Member
from points.models import MallItem, MallRedemption, MemberTier
from points.services.mall import mall_redemption_fulfil
from scrm.api.errors import ApplicationError

logger = logging.getLogger(__name__)


def mall_coupon_key(redemption_id: int, index: int = 0) -> str:
    """The first coupon of a redemption is ``mall:<id>``; more of the same redemption (a
    quantity above one) ``mall:<id>:2`` and on."""
    return f"mall:{redemption_id}" if index == 0 else f"mall:{redemption_id}:{index + 1}"


def coupons_issue_for_mall(*, redemption_id: int) -> list[Coupon]:
    """Issue the coupons a points-mall redemption of a coupon item bought, and fulfil it,
    in one transaction.  When the item names no template the tenant has, or the coupon
    cannot be issued (out of stock, say), the redemption stays ``created`` and this is
    logged: an operator can cancel it, which gives the points back.  Safe to run twice."""
    redemption = (MallRedemption.objects.select_related("item")
                  .filter(pk=redemption_id, status=MallRedemption.Status.CREATED,
                          item__kind=MallItem.Kind.COUPON).first())  # fmt: skip
    if redemption is None or not redemption.item.coupon_template:
        return []
    template = CouponTemplate.objects.filter(code=redemption.item.coupon_template).first()
    if template is None:
        logger.warning("mall redemption %s: no coupon template %r; left created",
                       redemption_id, redemption.item.coupon_template)
        return []
    actor, member = system_actor(), Member.objects.get(pk=redemption.member_id)
    try:
        with transaction.atomic():
            coupons = [coupon_issue(actor=actor, template=template, member=member,
                                    key=mall_coupon_key(redemption.pk, index),
                                    source=CouponSource.MALL, ref=str(redemption.pk))
                       for index in range(redemption.quantity)]
            mall_redemption_fulfil(actor=actor, redemption=redemption)
    except ApplicationError as exc:
        logger.warning("mall redemption %s: coupon %s not issued (%s: %s); left created",
                       redemption_id, template.code, exc.code, exc.detail)
        return []
    return coupons


def coupons_issue_birthdays(*, day: date) -> int:
    """The birthday coupon of each member's level, to the members born on ``day``'s date
    (29 February birthdays on 28 February in other years), once per member and year (key
    ``birthday:<member id>:<year>``); returns how many were issued.  A member with levels in
    several programmes gets the tenant-wide programme's, else their highest level's."""
    templates = {t.code: t for t in CouponTemplate.objects.all()}
    issued, actor = 0, system_actor()
    for member_id, code in _birthday_coupons(day).items():
        key = f"birthday:{member_id}:{day.year}"
        template = templates.get(code)
        if template is None:
            logger.warning("birthday coupon %r of member %s: no such template", code, member_id)
            continue
        if Coupon.objects.filter(idempotency_key=key).exists():
            continue
        try:
            coupon_issue(actor=actor, template=template, member=Member.objects.get(pk=member_id),
                         key=key, source=CouponSource.BIRTHDAY, ref=str(day.year))
        except ApplicationError as exc:
            logger.info("birthday coupon %s of member %s not issued: %s", code, member_id,
                        exc.code)
            continue
        issued += 1
    return issued


def _birthday_coupons(day: date) -> dict[int, str]:
    """member id → the template code of their birthday coupon."""
    born = Q(member__birthday__month=day.month, member__birthday__day=day.day)
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        born |= Q(member__birthday__month=2, member__birthday__day=29)
    standings = (
        MemberTier.objects.filter(born, member__status=Member.Status.ACTIVE,
                                  program__is_active=True, level__isnull=False)
        .exclude(level__birthday_coupon="")
        .order_by("member_id", F("program__brand_id").asc(nulls_first=True), "-level__rank")
        .values_list("member_id", "level__birthday_coupon")
    )  # fmt: skip
    chosen: dict[int, str] = {}
    for member_id, code in standings:
        chosen.setdefault(member_id, code)
    return chosen
