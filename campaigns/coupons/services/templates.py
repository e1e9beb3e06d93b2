"""Coupon templates: what a coupon gives, to whom, where and for how long."""

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.coupons.models import CouponTemplate
from campaigns.coupons.services.common import conflict, invalid, plain, refuse_unknown
from points.models import TierLevel
from scrm.access import Actor
from scrm.audit import audit_record
from scrm.models import Store

TEMPLATE_FIELDS = (
    "code", "name", "description", "kind", "amount_fen", "percent_off", "max_discount_fen",
    "gift_name", "threshold_fen", "validity", "valid_from", "valid_until", "valid_days",
    "total_stock", "per_member_limit", "stores", "skus", "categories", "allowed_tiers",
    "is_active",
)  # fmt: skip
LIST_FIELDS = ("stores", "skus", "categories", "allowed_tiers")
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
MAX_LIST = 500

Errors = dict[str, list[str]]


def coupon_template_validate(*, template: CouponTemplate) -> None:
    """Refuse (400 ``validation_error``, with the fields at fault) a template that cannot be
    issued as it stands."""
    errors: Errors = {}
    if not SLUG.match(template.code or ""):
        errors["code"] = [_("编码须为 1-64 位字母、数字、下划线或连字符。")]
    if not (template.name or "").strip():
        errors["name"] = [_("必填。")]
    _kind_errors(template, errors)
    _validity_errors(template, errors)
    if template.total_stock and template.total_stock < template.issued_count:
        errors["total_stock"] = [_("发行总量不能少于已发放的 %(n)s 张。")
                                 % {"n": template.issued_count}]
    _list_errors(template, errors)
    if errors:
        raise invalid(errors)


def _kind_errors(template: CouponTemplate, errors: Errors) -> None:
    kind = template.kind
    if kind not in CouponTemplate.Kind.values:
        errors["kind"] = [_("须为 fixed、percent 或 gift。")]
        return
    if kind == CouponTemplate.Kind.FIXED and not template.amount_fen:
        errors["amount_fen"] = [_("满减券须设置减免金额。")]
    elif kind != CouponTemplate.Kind.FIXED and template.amount_fen:
        errors["amount_fen"] = [_("只有满减券可以设置减免金额。")]
    if kind == CouponTemplate.Kind.PERCENT and not 1 <= template.percent_off <= 99:
        errors["percent_off"] = [_("折扣券须设置 1 到 99 之间的减免比例。")]
    elif kind != CouponTemplate.Kind.PERCENT and (template.percent_off
                                                   or template.max_discount_fen):
        name = "percent_off" if template.percent_off else "max_discount_fen"
        errors[name] = [_("只有折扣券可以设置折扣和最高减免。")]
    if kind == CouponTemplate.Kind.GIFT and not template.gift_name.strip():
        errors["gift_name"] = [_("赠品券须写明赠品。")]


def _validity_errors(template: CouponTemplate, errors: Errors) -> None:
    if template.validity == CouponTemplate.Validity.ABSOLUTE:
        if template.valid_until is None:
            errors["valid_until"] = [_("固定有效期须设置失效时间。")]
        elif template.valid_from and template.valid_until <= template.valid_from:
            errors["valid_until"] = [_("失效时间须晚于生效时间。")]
        if template.valid_days:
            errors["valid_days"] = [_("固定有效期不设有效天数。")]
    elif template.validity == CouponTemplate.Validity.RELATIVE:
        if not template.valid_days:
            errors["valid_days"] = [_("领取后 N 天有效须设置有效天数。")]
        for name in ("valid_from", "valid_until"):
            if getattr(template, name) is not None:
                errors[name] = [_("领取后 N 天有效不设固定日期。")]
    else:
        errors["validity"] = [_("须为 absolute 或 relative。")]


def _list_errors(template: CouponTemplate, errors: Errors) -> None:
    for name in LIST_FIELDS:
        values = getattr(template, name)
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            errors[name] = [_("须为非空字符串的列表。")]
        elif len(values) > MAX_LIST:
            errors[name] = [_("最多 %(n)s 项。") % {"n": MAX_LIST}]
    if "stores" not in errors and template.stores:
        known = set(Store.objects.filter(code__in=template.stores)
                    .values_list("code", flat=True))
        if unknown := sorted(set(template.stores) - known):
            errors["stores"] = [_("未知门店：%(codes)s") % {"codes": ", ".join(unknown)}]
    if "allowed_tiers" not in errors and template.allowed_tiers:
        known = set(TierLevel.objects.filter(code__in=template.allowed_tiers)
                    .values_list("code", flat=True))
        if unknown := sorted(set(template.allowed_tiers) - known):
            errors["allowed_tiers"] = [_("未知等级：%(codes)s") % {"codes": ", ".join(unknown)}]


@transaction.atomic
def coupon_template_save(*, actor: Actor, template: CouponTemplate | None = None,
                         changes: dict[str, Any]) -> CouponTemplate:
    """Create a template (``code``, ``name`` and ``kind`` required) or change one.  The code
    stays what it was created with: the mall and tier benefits refer to it.  Coupons already
    issued keep their validity; the other rules (threshold, stores, products) are the
    template's as it is when a coupon is redeemed."""
    refuse_unknown(changes, TEMPLATE_FIELDS)
    creating = template is None
    if creating:
        missing = [name for name in ("code", "name", "kind") if not changes.get(name)]
        if missing:
            raise invalid({name: [_("必填。")] for name in missing})
        template = CouponTemplate(tenant_id=actor.tenant.pk)
    else:
        template = CouponTemplate.objects.select_for_update().get(pk=template.pk)
        if "code" in changes and changes["code"] != template.code:
            raise invalid({"code": [_("编码创建后不能修改。")]}, code="code_immutable")
    before = {name: getattr(template, name) for name in changes}
    for name, value in changes.items():
        setattr(template, name, value)
    coupon_template_validate(template=template)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:
        raise conflict("template_code_taken",
                       _("编码“%(code)s”已被使用。") % {"code": template.code}) from exc
    audit_record(actor=actor, action="coupons.template_create" if creating
                 else "coupons.template_update", target=template,
                 data={"after": plain(changes)} if creating
                 else {"before": plain(before), "after": plain(changes)})
    return template
