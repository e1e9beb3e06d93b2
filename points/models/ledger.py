"""The points ledger: accounts (cached balances), lots (what was earned, with its expiry),
the append-only ledger of entries, which lots each entry consumed, check-ins, and each
tenant's points policy.

Invariants, per member: ``account.balance == sum(entry.points)``,
``account.shortfall == sum(entry.shortfall_delta)`` and
``account.balance == sum(lot.remaining for active lots)``.  ``check_ledger`` reports drift.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import TenantModel


class EntryKind(models.TextChoices):
    EARN = "earn", _("获得")
    REDEEM = "redeem", _("使用")
    EXPIRE = "expire", _("过期")
    ADJUST = "adjust", _("调整")
    REVERSE = "reverse", _("冲正")


class PointsAccount(TenantModel):
    """A member's cached balance, updated in the same transaction as each ledger entry."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="points_account",
                               verbose_name=_("会员"))
    balance = models.BigIntegerField(_("积分余额"), default=0)
    # Points owed: a refund took back points the member had already spent.  Later credits
    # pay it off first, so a member never has both a balance and a shortfall.
    shortfall = models.BigIntegerField(_("欠分"), default=0)
    # Earned points net of their reversals (refunds); adjustments and merges not included.
    lifetime_earned = models.BigIntegerField(_("累计获得"), default=0)
    # False once the member was merged into another: its points moved to the survivor's
    # account, and writes that raced the merge are redirected there.
    is_active = models.BooleanField(_("有效"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    class Meta:
        verbose_name = _("积分账户")
        verbose_name_plural = _("积分账户")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member"], name="points_account_member_uniq"),
            models.CheckConstraint(condition=Q(balance__gte=0),
                                   name="points_account_balance_nonneg"),
            models.CheckConstraint(condition=Q(shortfall__gte=0),
                                   name="points_account_shortfall_nonneg"),
            models.CheckConstraint(condition=Q(shortfall=0) | Q(balance=0),
                                   name="points_account_shortfall_or_balance"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.balance}"


class PointsEntry(TenantModel):
    """One change of points.  Append-only: a database trigger refuses UPDATE, and DELETE
    outside explicit platform access."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    kind = models.CharField(_("类型"), max_length=8, choices=EntryKind.choices)
    points = models.BigIntegerField(_("积分变动"))
    balance_after = models.BigIntegerField(_("变动后余额"))
    shortfall_delta = models.BigIntegerField(_("欠分变动"), default=0)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    ref_type = models.CharField(_("关联类型"), max_length=32, blank=True)
    ref_id = models.CharField(_("关联 ID"), max_length=64, blank=True)
    operator = models.CharField(_("操作人"), max_length=64, blank=True)
    # NULL, not "", when absent: unique per tenant among the entries that have one.
    idempotency_key = models.CharField(  # noqa: DJ001
        _("幂等键"), max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("积分流水")
        verbose_name_plural = _("积分流水")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                    name="points_entry_idem_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "created_at"], name="points_entry_member_idx"),
            # Expiry entries name their lot; they are found by idempotency key instead.
            models.Index(fields=["tenant", "ref_type", "ref_id"], name="points_entry_ref_idx",
                         condition=~Q(ref_type__in=["", "lot"])),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


class PointsLot(TenantModel):
    """Points earned together, spent oldest-expiry first, expiring together."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("有效")
        EXPIRED = "expired", _("已过期")
        REVERSED = "reversed", _("已冲正")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    earned = models.BigIntegerField(_("获得积分"))
    remaining = models.BigIntegerField(_("剩余积分"))
    earned_at = models.DateTimeField(_("获得时间"))
    expires_at = models.DateTimeField(_("过期时间"))
    source_entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, db_constraint=False,
                                     db_index=False, related_name="+",
                                     verbose_name=_("来源流水"))
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices,
                              default=Status.ACTIVE)

    class Meta:
        verbose_name = _("积分批次")
        verbose_name_plural = _("积分批次")
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0),
                                   name="points_lot_remaining_nonneg"),
            models.CheckConstraint(condition=Q(remaining__lte=models.F("earned")),
                                   name="points_lot_remaining_within"),
        ]
        indexes = [
            # Spending (FIFO by expiry) and a member's live lots.
            models.Index(fields=["tenant", "member", "expires_at", "id"],
                         name="points_lot_member_live_idx",
                         condition=Q(status="active", remaining__gt=0)),
            # The expiry job and the tenant's expiring-soon figures.
            models.Index(fields=["tenant", "expires_at", "id"], name="points_lot_due_idx",
                         condition=Q(status="active", remaining__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.earned}"


class PointsLotUse(TenantModel):
    """How many points an entry took from a lot (negative: gave back, on a cancellation)."""

    entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, db_constraint=False,
                              db_index=False, related_name="+", verbose_name=_("流水"))
    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, db_constraint=False,
                            db_index=False, related_name="+", verbose_name=_("批次"))
    points = models.BigIntegerField(_("积分"))

    class Meta:
        verbose_name = _("积分批次使用")
        verbose_name_plural = _("积分批次使用")
        indexes = [models.Index(fields=["tenant", "entry"], name="points_lotuse_entry_idx")]


class PointsCheckIn(TenantModel):
    """One member's check-in (签到) on one day (Asia/Shanghai)."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    day = models.DateField(_("日期"))
    streak = models.PositiveIntegerField(_("连续天数"))
    points = models.BigIntegerField(_("积分"))
    entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, null=True, blank=True,
                              db_constraint=False, db_index=False, related_name="+",
                              verbose_name=_("流水"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("签到")
        verbose_name_plural = _("签到")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member", "day"],
                                    name="points_checkin_member_day_uniq"),
        ]


class PointsPolicy(TenantModel):
    """A tenant's points rules: one row, created with these defaults on first use."""

    class Rounding(models.TextChoices):
        FLOOR = "floor", _("向下取整")
        ROUND = "round", _("四舍五入")

    class ExpiryMode(models.TextChoices):
        DAYS = "days", _("获得后固定天数")
        YEAR_END = "year_end", _("次年年底")

    points_per_yuan = models.DecimalField(
        _("每元积分"), max_digits=8, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))])
    rounding = models.CharField(_("取整方式"), max_length=8, choices=Rounding.choices,
                                default=Rounding.FLOOR)
    expiry_mode = models.CharField(_("有效期规则"), max_length=8, choices=ExpiryMode.choices,
                                   default=ExpiryMode.YEAR_END)
    expiry_days = models.PositiveIntegerField(
        _("有效天数"), default=365, validators=[MinValueValidator(1), MaxValueValidator(36500)])
    point_value_fen = models.PositiveIntegerField(_("每积分价值(分)"), default=1)
    daily_earn_cap = models.PositiveIntegerField(_("每日消费积分上限"), default=0,
                                                 help_text=_("0 表示不限"))
    signup_points = models.PositiveIntegerField(_("注册积分"), default=0)
    birthday_points = models.PositiveIntegerField(_("生日积分"), default=0)
    checkin_points = models.PositiveIntegerField(_("签到积分"), default=5)
    checkin_streak_days = models.PositiveIntegerField(
        _("连续签到奖励周期(天)"), default=7, validators=[MinValueValidator(2)])
    checkin_streak_bonus = models.PositiveIntegerField(_("连续签到奖励积分"), default=20)
    review_points = models.PositiveIntegerField(_("评价积分"), default=0)
    # "15" is the 15th of every month, "11-11" is 11 November every year.
    members_days = models.JSONField(_("会员日"), default=list, blank=True)
    members_day_multiplier = models.DecimalField(
        _("会员日倍数"), max_digits=4, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("1"))])
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("积分规则")
        verbose_name_plural = _("积分规则")
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="points_policy_tenant_uniq"),
        ]

    def __str__(self) -> str:
        return str(_("积分规则"))
