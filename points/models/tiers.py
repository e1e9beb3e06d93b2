"""Tier programmes (会员等级): ordered levels with thresholds and benefits, the growth value
(成长值) ledger that qualifies members for them, each member's current level, and the history
of every change.

A programme covers the whole tenant, or one brand of a group tenant (its growth and spend
then come from that brand's stores).  Invariant, per member and programme:
``member_tier.growth_total == sum(growth_entry.points)``."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import Brand, TenantModel
from tags.models import Tag


class TierProgram(TenantModel):
    class Basis(models.TextChoices):
        GROWTH = "growth", _("成长值")
        SPEND = "spend", _("消费金额")

    name = models.CharField(_("名称"), max_length=64)
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, null=True, blank=True,
                              db_constraint=False, db_index=False, related_name="+",
                              verbose_name=_("品牌"),
                              help_text=_("留空表示适用于整个租户"))
    basis = models.CharField(_("定级依据"), max_length=8, choices=Basis.choices,
                             default=Basis.GROWTH)
    window_days = models.PositiveIntegerField(
        _("统计周期(天)"), default=365, validators=[MaxValueValidator(3650)],
        help_text=_("按最近 N 天的成长值或消费金额定级；0 表示累计"))
    review_days = models.PositiveIntegerField(
        _("保级复核周期(天)"), default=365, validators=[MinValueValidator(1),
                                                      MaxValueValidator(3650)])
    protection_days = models.PositiveIntegerField(
        _("升级保护期(天)"), default=90, validators=[MaxValueValidator(3650)],
        help_text=_("升级后这段时间内不降级"))
    max_downgrade_steps = models.PositiveSmallIntegerField(
        _("每次最多降级"), default=1, help_text=_("每次复核最多降几级；0 表示直接降到应得等级"))
    growth_per_yuan = models.DecimalField(
        _("每元成长值"), max_digits=8, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))])
    growth_checkin = models.PositiveIntegerField(_("签到成长值"), default=0)
    growth_review = models.PositiveIntegerField(_("评价成长值"), default=0)
    growth_referral = models.PositiveIntegerField(_("推荐成长值"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("等级体系")
        verbose_name_plural = _("等级体系")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "brand"], name="tier_program_brand_uniq"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(brand__isnull=True),
                                    name="tier_program_tenant_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class TierLevel(TenantModel):
    """One level, with the threshold that reaches it and the benefits it gives."""

    program = models.ForeignKey(TierProgram, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="levels", verbose_name=_("等级体系"))
    rank = models.PositiveSmallIntegerField(_("级别"), help_text=_("1 为最低"))
    code = models.SlugField(_("编码"), max_length=32,
                            help_text=_("人群圈选用：{\"tier\": \"gold\"}"))
    name = models.CharField(_("名称"), max_length=32)
    threshold = models.BigIntegerField(
        _("门槛"), validators=[MinValueValidator(0)],
        help_text=_("成长值，或消费金额(分)"))
    description = models.TextField(_("说明"), blank=True)
    discount_percent = models.PositiveSmallIntegerField(
        _("折扣(%)"), default=100, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("95 表示 95 折"))
    points_multiplier = models.DecimalField(
        _("积分倍数"), max_digits=4, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("20"))])
    birthday_points = models.PositiveIntegerField(_("生日积分"), default=0,
                                                  help_text=_("0 表示使用积分规则的生日积分"))
    birthday_coupon = models.CharField(_("生日券"), max_length=64, blank=True,
                                       help_text=_("优惠券模板编码"))
    free_shipping = models.BooleanField(_("包邮"), default=False)
    exclusive_coupons = models.JSONField(_("专属券"), default=list, blank=True,
                                         help_text=_("优惠券模板编码列表"))
    lottery_weight = models.PositiveIntegerField(_("抽奖权重"), default=1)
    priority_service = models.BooleanField(_("优先服务"), default=False)
    # The system tag members of this level carry, for audiences and rules.
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, null=True, blank=True,
                            db_constraint=False, db_index=False, related_name="+",
                            verbose_name=_("系统标签"))

    class Meta:
        verbose_name = _("会员等级")
        verbose_name_plural = _("会员等级")
        ordering = ["program_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "program", "rank"],
                                    name="tier_level_rank_uniq"),
            models.UniqueConstraint(fields=["tenant", "program", "threshold"],
                                    name="tier_level_threshold_uniq"),
            models.UniqueConstraint(fields=["tenant", "code"], name="tier_level_code_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class GrowthSource(models.TextChoices):
    ORDER = "order", _("消费")
    CHECKIN = "checkin", _("签到")
    REVIEW = "review", _("评价")
    REFERRAL = "referral", _("推荐")
    CAMPAIGN = "campaign", _("活动")
    ADJUST = "adjust", _("调整")
    REVERSE = "reverse", _("冲正")


class GrowthEntry(TenantModel):
    """One change of growth value.  Append-only, like the points ledger."""

    program = models.ForeignKey(TierProgram, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("等级体系"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    points = models.BigIntegerField(_("成长值"))
    source = models.CharField(_("来源"), max_length=8, choices=GrowthSource.choices)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    ref_type = models.CharField(_("关联类型"), max_length=32, blank=True)
    ref_id = models.CharField(_("关联 ID"), max_length=64, blank=True)
    operator = models.CharField(_("操作人"), max_length=64, blank=True)
    idempotency_key = models.CharField(  # noqa: DJ001
        _("幂等键"), max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("成长值流水")
        verbose_name_plural = _("成长值流水")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                    name="growth_entry_idem_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "program", "member", "created_at"],
                         name="growth_entry_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.points:+d}"


class MemberTier(TenantModel):
    """A member's standing in one programme."""

    program = models.ForeignKey(TierProgram, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("等级体系"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="tiers", verbose_name=_("会员"))
    level = models.ForeignKey(TierLevel, on_delete=models.PROTECT, null=True, blank=True,
                              db_constraint=False, db_index=False, related_name="+",
                              verbose_name=_("当前等级"))
    growth_total = models.BigIntegerField(_("累计成长值"), default=0)
    achieved_at = models.DateTimeField(_("获得等级时间"), null=True, blank=True)
    protected_until = models.DateTimeField(_("保护期至"), null=True, blank=True)
    next_review_at = models.DateTimeField(_("下次复核"), null=True, blank=True)
    is_override = models.BooleanField(_("人工指定"), default=False)
    override_reason = models.CharField(_("指定原因"), max_length=255, blank=True)
    override_until = models.DateTimeField(_("指定有效期至"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    class Meta:
        verbose_name = _("会员等级状态")
        verbose_name_plural = _("会员等级状态")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "program", "member"],
                                    name="member_tier_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "program", "next_review_at"],
                         name="member_tier_review_idx"),
            models.Index(fields=["tenant", "member"], name="member_tier_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.level_id}"


class TierChange(TenantModel):
    class Kind(models.TextChoices):
        UPGRADE = "upgrade", _("升级")
        DOWNGRADE = "downgrade", _("降级")
        OVERRIDE = "override", _("人工调整")

    program = models.ForeignKey(TierProgram, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("等级体系"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    from_level = models.ForeignKey(TierLevel, on_delete=models.PROTECT, null=True, blank=True,
                                   db_constraint=False, db_index=False, related_name="+",
                                   verbose_name=_("原等级"))
    to_level = models.ForeignKey(TierLevel, on_delete=models.PROTECT, null=True, blank=True,
                                 db_constraint=False, db_index=False, related_name="+",
                                 verbose_name=_("新等级"))
    kind = models.CharField(_("类型"), max_length=9, choices=Kind.choices)
    qualifying_value = models.BigIntegerField(_("定级数值"), default=0)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    operator = models.CharField(_("操作人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("等级变更")
        verbose_name_plural = _("等级变更")
        indexes = [
            models.Index(fields=["tenant", "member", "created_at"], name="tier_change_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_level_id}→{self.to_level_id}"
