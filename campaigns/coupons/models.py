"""Coupons (优惠券): templates operators define, and the coupons issued from them to members.

A template's stock is a counter (``issued_count`` against ``total_stock``), raised by a
conditional update in the issuing transaction and checked by the database, so it is never
oversold.  A coupon is issued once per idempotency key; it is redeemed once, by a conditional
update from ``issued``."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Order
from scrm.models import TenantModel


class CouponTemplate(TenantModel):
    class Kind(models.TextChoices):
        FIXED = "fixed", _("满减券")
        PERCENT = "percent", _("折扣券")
        GIFT = "gift", _("赠品券")

    class Validity(models.TextChoices):
        ABSOLUTE = "absolute", _("固定有效期")
        RELATIVE = "relative", _("领取后 N 天有效")

    # The points mall (MallItem.coupon_template) and tier benefits (TierLevel.birthday_coupon,
    # exclusive_coupons) name templates by code.
    code = models.SlugField(_("编码"), max_length=64)
    name = models.CharField(_("名称"), max_length=128)
    description = models.TextField(_("说明"), blank=True)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices)
    amount_fen = models.PositiveBigIntegerField(_("减免金额(分)"), default=0,
                                                help_text=_("满减券"))
    percent_off = models.PositiveSmallIntegerField(
        _("折扣(减免%)"), default=0, validators=[MaxValueValidator(99)],
        help_text=_("折扣券：20 表示减 20%，即 8 折"))
    max_discount_fen = models.PositiveBigIntegerField(_("最高减免(分)"), default=0,
                                                      help_text=_("折扣券；0 表示不封顶"))
    gift_name = models.CharField(_("赠品"), max_length=128, blank=True, help_text=_("赠品券"))
    threshold_fen = models.PositiveBigIntegerField(_("使用门槛(分)"), default=0,
                                                   help_text=_("订单满多少可用；0 表示无门槛"))
    validity = models.CharField(_("有效期类型"), max_length=8, choices=Validity.choices,
                                default=Validity.RELATIVE)
    valid_from = models.DateTimeField(_("生效时间"), null=True, blank=True,
                                      help_text=_("固定有效期；留空表示自领取起"))
    valid_until = models.DateTimeField(_("失效时间"), null=True, blank=True,
                                       help_text=_("固定有效期"))
    valid_days = models.PositiveIntegerField(_("有效天数"), default=0,
                                             validators=[MaxValueValidator(3650)],
                                             help_text=_("领取后 N 天有效"))
    total_stock = models.PositiveIntegerField(_("发行总量"), default=0,
                                              help_text=_("0 表示不限"))
    issued_count = models.PositiveIntegerField(_("已发放"), default=0)
    per_member_limit = models.PositiveIntegerField(_("每人限领"), default=1,
                                                   help_text=_("0 表示不限"))
    # Store codes, SKUs, product categories and tier level codes; empty: no restriction.
    stores = models.JSONField(_("适用门店"), default=list, blank=True)
    skus = models.JSONField(_("适用商品 SKU"), default=list, blank=True)
    categories = models.JSONField(_("适用品类"), default=list, blank=True)
    allowed_tiers = models.JSONField(_("限定等级"), default=list, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("优惠券模板")
        verbose_name_plural = _("优惠券模板")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="coupon_template_code_uniq"),
            models.CheckConstraint(
                condition=Q(total_stock=0) | Q(issued_count__lte=F("total_stock")),
                name="coupon_template_not_oversold"),
            models.CheckConstraint(condition=Q(percent_off__lte=99),
                                   name="coupon_template_percent_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def stock_left(self) -> int | None:
        """What is left to issue, as of this row; None: unlimited."""
        return max(self.total_stock - self.issued_count, 0) if self.total_stock else None


class CouponSource(models.TextChoices):
    CAMPAIGN = "campaign", _("营销活动")
    MALL = "mall", _("积分商城")
    AUTOMATION = "automation", _("自动化")
    REFERRAL = "referral", _("推荐有礼")
    MANUAL = "manual", _("手动发放")
    BIRTHDAY = "birthday", _("生日礼")


class Coupon(TenantModel):
    class Status(models.TextChoices):
        ISSUED = "issued", _("未使用")
        REDEEMED = "redeemed", _("已使用")
        EXPIRED = "expired", _("已过期")
        CANCELLED = "cancelled", _("已作废")

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, db_constraint=False,
                                 db_index=False, related_name="coupons",
                                 verbose_name=_("模板"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    code = models.CharField(_("券码"), max_length=16)
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.ISSUED)
    source = models.CharField(_("来源"), max_length=10, choices=CouponSource.choices)
    ref = models.CharField(_("来源单号"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("幂等键"), max_length=255)
    operator = models.CharField(_("发放人"), max_length=64, blank=True)
    issued_at = models.DateTimeField(_("发放时间"), default=timezone.now)
    valid_from = models.DateTimeField(_("生效时间"))
    valid_until = models.DateTimeField(_("失效时间"))
    redeemed_at = models.DateTimeField(_("核销时间"), null=True, blank=True)
    redeemed_order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True,
                                       db_constraint=False, db_index=False, related_name="+",
                                       verbose_name=_("核销订单"))
    order_amount_fen = models.BigIntegerField(_("订单金额(分)"), null=True, blank=True)
    discount_fen = models.BigIntegerField(_("优惠金额(分)"), null=True, blank=True,
                                          validators=[MinValueValidator(0)])
    redeemed_store = models.CharField(_("核销门店"), max_length=64, blank=True)
    redeemed_by = models.CharField(_("核销人"), max_length=64, blank=True)
    cancelled_at = models.DateTimeField(_("作废时间"), null=True, blank=True)
    cancel_reason = models.CharField(_("作废原因"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("优惠券")
        verbose_name_plural = _("优惠券")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="coupon_code_uniq"),
            models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                    name="coupon_idem_uniq"),
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")),
                                   name="coupon_window_valid"),
        ]
        indexes = [
            # A member's holding of a template (the per-member limit), and the template's
            # coupons by status (its results, index-only).  Every index that can answer "this
            # member's coupons of this template" is bounded by the member's coupons, so no
            # plan made on stale statistics walks a whole template per member.
            models.Index(fields=["tenant", "template", "member"], include=["status"],
                         name="coupon_holder_idx"),
            models.Index(fields=["tenant", "member"], name="coupon_member_idx"),
            models.Index(fields=["tenant", "valid_until"], name="coupon_expiry_idx",
                         condition=Q(status="issued")),
        ]

    def __str__(self) -> str:
        return self.code
