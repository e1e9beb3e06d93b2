"""The points mall (积分商城): items bought with points (or points and cash), flash sales
(积分秒杀) with their own price and stock, and redemption orders.

Stock lives in a counter per item and per flash sale, decremented by a conditional update in
the redemption's transaction, so it never goes below zero."""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from points.models.ledger import PointsEntry
from scrm.models import TenantModel


class MallItem(TenantModel):
    class Kind(models.TextChoices):
        COUPON = "coupon", _("优惠券")
        GIFT = "gift", _("实物礼品")
        POINTS_CASH = "points_cash", _("积分+现金")

    name = models.CharField(_("名称"), max_length=128)
    description = models.TextField(_("说明"), blank=True)
    image_url = models.URLField(_("图片"), blank=True)
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.GIFT)
    points = models.PositiveIntegerField(_("所需积分"), validators=[MinValueValidator(1)])
    cash_fen = models.PositiveIntegerField(_("另付现金(分)"), default=0)
    stock = models.PositiveIntegerField(_("库存"), default=0)
    sold = models.PositiveIntegerField(_("已兑换"), default=0)
    per_member_limit = models.PositiveIntegerField(_("每人限兑"), default=0,
                                                   help_text=_("0 表示不限"))
    # Level codes (TierLevel.code) allowed to redeem; empty: everyone.
    allowed_tiers = models.JSONField(_("限定等级"), default=list, blank=True)
    coupon_template = models.CharField(_("优惠券模板"), max_length=64, blank=True)
    starts_at = models.DateTimeField(_("上架时间"), null=True, blank=True)
    ends_at = models.DateTimeField(_("下架时间"), null=True, blank=True)
    is_active = models.BooleanField(_("上架"), default=True)
    sort_order = models.IntegerField(_("排序"), default=0)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("商城商品")
        verbose_name_plural = _("商城商品")
        indexes = [models.Index(fields=["tenant", "is_active", "sort_order"],
                                name="mall_item_listing_idx")]

    def __str__(self) -> str:
        return self.name


class FlashSale(TenantModel):
    """A limited-time offer on an item, at its own price, from its own stock."""

    item = models.ForeignKey(MallItem, on_delete=models.PROTECT, db_constraint=False,
                             db_index=False, related_name="flash_sales", verbose_name=_("商品"))
    name = models.CharField(_("名称"), max_length=128, blank=True)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    points = models.PositiveIntegerField(_("秒杀积分"), validators=[MinValueValidator(1)])
    cash_fen = models.PositiveIntegerField(_("另付现金(分)"), default=0)
    stock = models.PositiveIntegerField(_("库存"))
    sold = models.PositiveIntegerField(_("已兑换"), default=0)
    per_member_limit = models.PositiveIntegerField(_("每人限兑"), default=1)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("积分秒杀")
        verbose_name_plural = _("积分秒杀")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                   name="flash_sale_window_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "item", "starts_at"],
                                name="flash_sale_item_idx")]

    def __str__(self) -> str:
        return self.name or str(self.item_id)


class MallRedemption(TenantModel):
    class Status(models.TextChoices):
        CREATED = "created", _("待发放")
        FULFILLED = "fulfilled", _("已发放")
        CANCELLED = "cancelled", _("已取消")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    item = models.ForeignKey(MallItem, on_delete=models.PROTECT, db_constraint=False,
                             db_index=False, related_name="+", verbose_name=_("商品"))
    flash_sale = models.ForeignKey(FlashSale, on_delete=models.PROTECT, null=True, blank=True,
                                   db_constraint=False, db_index=False, related_name="+",
                                   verbose_name=_("秒杀"))
    quantity = models.PositiveIntegerField(_("数量"), default=1)
    points = models.PositiveIntegerField(_("扣除积分"))
    cash_fen = models.PositiveIntegerField(_("现金(分)"), default=0)
    payment_ref = models.CharField(_("支付单号"), max_length=64, blank=True)
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.CREATED)
    points_entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, null=True,
                                     blank=True, db_constraint=False, db_index=False,
                                     related_name="+", verbose_name=_("积分流水"))
    address = models.JSONField(_("收货信息"), default=dict, blank=True)
    tracking_no = models.CharField(_("物流单号"), max_length=64, blank=True)
    note = models.CharField(_("备注"), max_length=255, blank=True)
    operator = models.CharField(_("操作人"), max_length=64, blank=True)
    idempotency_key = models.CharField(  # noqa: DJ001
        _("幂等键"), max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(_("兑换时间"), default=timezone.now)
    fulfilled_at = models.DateTimeField(_("发放时间"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("取消时间"), null=True, blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("兑换订单")
        verbose_name_plural = _("兑换订单")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                    name="mall_redemption_idem_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "item"], name="mall_redemption_member_idx"),
            models.Index(fields=["tenant", "status", "created_at"],
                         name="mall_redemption_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} × {self.quantity}"
