"""Issuing one coupon to one member.

Every issue of a template, single or bulk, first locks the template's row.  That serialises
them, so the per-member limit is counted race-free, and the stock is then taken with a
conditional update (``issued_count < total_stock``, which the database checks too): never
oversold.  The idempotency key is re-checked under the lock, so retries racing each other
issue one coupon and all get it."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.coupons import signals
from campaigns.coupons.codes import codes_generate
from campaigns.coupons.models import Coupon, CouponSource, CouponTemplate
from campaigns.coupons.services.common import (
    TIMELINE_ISSUED,
    conflict,
    invalid,
    key_reused,
    not_found,
    unique,
)
from members.models import Member
from members.services import timeline_add
from points.selectors import member_level_codes
from points.services.core import member_resolve
from scrm.access import Actor
from scrm.events import event_record

CODE_ATTEMPTS = 5
MAX_KEY_LENGTH = 255


class _KeyTaken(Exception):  # noqa: N818 - a signal to roll back and replay, not an error
    """The idempotency key belongs to a coupon issued meanwhile."""


def coupon_issue(*, actor: Actor, template: CouponTemplate, member: Member, key: str,
                 source: str, ref: str = "") -> Coupon:
    """Issue a coupon of ``template`` to ``member`` (or to the member it was merged into).
    Refused (409), with nothing written, when the template is inactive
    (``template_inactive``) or past its fixed validity (``template_expired``), the member's
    level may not have it (``tier_not_allowed``), they hold their limit already
    (``limit_reached``) or the stock is gone (``out_of_stock``).  The same ``key`` again
    answers with the first coupon; for another template or member it is refused (422
    ``idempotency_key_reused``)."""
    check_request(key=key, source=source, ref=ref)
    if member.tenant_id != template.tenant_id:  # the database does not check the reference
        raise not_found()
    member = member_resolve(member)
    earlier = _by_key(key)
    if earlier is None:
        try:
            with transaction.atomic():
                return _issue(actor=actor, template=template, member=member, key=key,
                              source=source, ref=ref)
        except (_KeyTaken, IntegrityError):
            earlier = _by_key(key)
            if earlier is None:
                raise
    if earlier.template_id != template.pk or earlier.member_id != member.pk:
        raise key_reused()
    return earlier


def check_request(*, key: str, source: str, ref: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise invalid({"key": [_("须为 1-255 个字符。")]})
    if source not in CouponSource.values:
        raise invalid({"source": [_("未知来源。")]})
    if len(ref) > Coupon._meta.get_field("ref").max_length:
        raise invalid({"ref": [_("过长。")]})


def _by_key(key: str) -> Coupon | None:
    return unique(Coupon.objects.filter(idempotency_key=key))


def _issue(*, actor: Actor, template: CouponTemplate, member: Member, key: str, source: str,
           ref: str) -> Coupon:
    template = CouponTemplate.objects.select_for_update().get(pk=template.pk)
    if _by_key(key) is not None:  # the same request, ahead of this one on the lock
        raise _KeyTaken(key)
    now = timezone.now()
    check_issuable(template=template, now=now)
    _check_tier(template=template, member=member)
    _check_limit(template=template, member=member)
    stock_take(template=template, count=1)
    valid_from, valid_until = validity_for(template=template, now=now)
    coupon = Coupon(tenant_id=template.tenant_id, template=template, member=member,
                    source=source, ref=ref, idempotency_key=key, operator=actor.label[:64],
                    issued_at=now, valid_from=valid_from, valid_until=valid_until)
    _save_with_fresh_code(coupon)
    timeline_add(member=member, kind=TIMELINE_ISSUED, actor=actor.label[:64], occurred_at=now,
                 data=timeline_issued_data(template=template, coupon_id=coupon.pk,
                                           source=source))
    tenant_id, coupon_id = coupon.tenant_id, coupon.pk
    event_record(tenant_id=tenant_id, type="coupon.issued", occurred_at=now,
                 data={"coupon_id": coupon_id, "template_id": template.pk,
                       "member_id": member.pk, "source": source})
    transaction.on_commit(lambda: signals.coupon_issued.send(
        sender=Coupon, tenant_id=tenant_id, coupon_ids=[coupon_id]))
    return coupon


def _save_with_fresh_code(coupon: Coupon) -> None:
    """Save ``coupon`` under a new random code, drawing again on the rare collision."""
    for attempt in range(CODE_ATTEMPTS):
        coupon.code = codes_generate(1)[0]
        try:
            with transaction.atomic():
                coupon.save(force_insert=True)
            return
        except IntegrityError:
            # The key was checked under the template lock, so a clash is the code's.
            if attempt == CODE_ATTEMPTS - 1 or _by_key(coupon.idempotency_key) is not None:
                raise
            coupon.pk = None


def check_issuable(*, template: CouponTemplate, now: datetime) -> None:
    if not template.is_active:
        raise conflict("template_inactive", _("该优惠券已停用。"))
    if template.validity == CouponTemplate.Validity.ABSOLUTE and template.valid_until <= now:
        raise conflict("template_expired", _("该优惠券的有效期已结束。"))


def _check_tier(*, template: CouponTemplate, member: Member) -> None:
    if template.allowed_tiers and not set(template.allowed_tiers) & member_level_codes(
            member_id=member.pk):
        raise conflict("tier_not_allowed", _("会员等级不符合领取条件。"))


def _check_limit(*, template: CouponTemplate, member: Member) -> None:
    """Race-free under the template's lock: every issue of it holds that lock."""
    if not template.per_member_limit:
        return
    held = holding(template=template).filter(member_id=member.pk).count()
    if held >= template.per_member_limit:
        raise conflict("limit_reached", _("每人限领 %(limit)s 张，已领 %(held)s 张。")
                       % {"limit": template.per_member_limit, "held": held})


def holding(*, template: CouponTemplate):
    """The coupons of ``template`` that count towards a member's limit: all but those
    cancelled."""
    return Coupon.objects.filter(template_id=template.pk).exclude(
        status=Coupon.Status.CANCELLED)


def stock_take(*, template: CouponTemplate, count: int) -> None:
    """Take ``count`` coupons from the template's stock (unlimited when ``total_stock`` is
    0): a conditional update, refused (409 ``out_of_stock``) when fewer are left."""
    taken = CouponTemplate.objects.filter(
        Q(total_stock=0) | Q(total_stock__gte=F("issued_count") + count), pk=template.pk,
    ).update(issued_count=F("issued_count") + count)
    if not taken:
        raise conflict("out_of_stock", _("优惠券已发完。"))
    template.issued_count += count


def validity_for(*, template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    """A new coupon's window: the template's fixed dates (from issue when it sets no start),
    or ``valid_days`` from issue."""
    if template.validity == CouponTemplate.Validity.ABSOLUTE:
        return template.valid_from or now, template.valid_until
    return now, now + timedelta(days=template.valid_days)


def timeline_issued_data(*, template: CouponTemplate, coupon_id: int, source: str) -> dict:
    return {"coupon": coupon_id, "template": template.code, "name": template.name,
            "source": source}
