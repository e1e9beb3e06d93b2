"""Campaigns: an audience (a segment snapshot per run), actions (coupon, points, message,
tag), a schedule, and per-member deliveries; automation rules that act on members' events;
and each tenant's contact policy (frequency cap, quiet hours) that every campaign respects."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import TenantModel
from tags.models import Segment, SegmentSnapshot


class ActionKind(models.TextChoices):
    COUPON = "coupon", _("发优惠券")
    POINTS = "points", _("送积分")
    OA_TEMPLATE = "oa_template", _("公众号模板消息")
    WECOM_MASS = "wecom_mass", _("企微群发任务")
    TAG = "tag", _("打标签")


class ContactPolicy(TenantModel):
    """How often a member may be reached by campaigns and automations, and when not."""

    max_touches = models.PositiveIntegerField(
        _("频次上限"), default=3, help_text=_("每个会员在周期内最多被触达次数；0 表示不限"))
    period_days = models.PositiveIntegerField(_("频次周期(天)"), default=7,
                                              validators=[MinValueValidator(1)])
    quiet_start = models.TimeField(_("免打扰开始"), null=True, blank=True)
    quiet_end = models.TimeField(_("免打扰结束"), null=True, blank=True)

    class Meta:
        verbose_name = _("触达规则")
        verbose_name_plural = _("触达规则")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="contact_policy_uniq")]


class Campaign(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        SCHEDULED = "scheduled", _("已排期")
        RUNNING = "running", _("进行中")
        PAUSED = "paused", _("已暂停")
        COMPLETED = "completed", _("已完成")
        CANCELLED = "cancelled", _("已取消")

    class Schedule(models.TextChoices):
        NOW = "now", _("立即")
        AT = "at", _("定时")
        RECURRING = "recurring", _("周期")

    name = models.CharField(_("名称"), max_length=128)
    description = models.TextField(_("说明"), blank=True)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("目标人群"))
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.DRAFT)
    schedule = models.CharField(_("执行方式"), max_length=9, choices=Schedule.choices,
                                default=Schedule.NOW)
    start_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    # Recurring: a crontab in Asia/Shanghai ("0 10 * * 1" = Mondays 10:00); each occurrence
    # takes a fresh snapshot of the segment.
    cron = models.CharField(_("周期表达式"), max_length=64, blank=True)
    end_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    throttle_per_minute = models.PositiveIntegerField(_("每分钟上限"), default=0,
                                                      help_text=_("0 表示不限"))
    respect_quiet_hours = models.BooleanField(_("遵守免打扰"), default=True)
    respect_frequency_cap = models.BooleanField(_("遵守频次上限"), default=True)
    require_consent = models.BooleanField(_("仅同意营销的会员"), default=True)
    control_percent = models.PositiveSmallIntegerField(
        _("对照组比例(%)"), default=0, validators=[MaxValueValidator(50)],
        help_text=_("随机留出这部分会员不触达，用于衡量提升"))
    attribution_days = models.PositiveIntegerField(_("归因窗口(天)"), default=7,
                                                   validators=[MinValueValidator(1)])
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("营销活动")
        verbose_name_plural = _("营销活动")
        indexes = [models.Index(fields=["tenant", "status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignAction(TenantModel):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_constraint=False,
                                 db_index=False, related_name="actions",
                                 verbose_name=_("活动"))
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)
    kind = models.CharField(_("动作"), max_length=12, choices=ActionKind.choices)
    # What each kind takes is in campaigns.services.actions.PARAMS.
    params = models.JSONField(_("参数"), default=dict)

    class Meta:
        verbose_name = _("活动动作")
        verbose_name_plural = _("活动动作")
        ordering = ["position", "id"]


class CampaignRun(TenantModel):
    """One sending of a campaign to a frozen audience, resumable from its checkpoint."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("等待执行")
        RUNNING = "running", _("发送中")
        COMPLETED = "completed", _("已完成")
        FAILED = "failed", _("失败")
        CANCELLED = "cancelled", _("已取消")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_constraint=False,
                                 db_index=False, related_name="runs", verbose_name=_("活动"))
    occurrence = models.PositiveIntegerField(_("第几次"), default=1)
    snapshot = models.ForeignKey(SegmentSnapshot, on_delete=models.PROTECT, null=True,
                                 blank=True, db_constraint=False, db_index=False,
                                 related_name="+", verbose_name=_("人群快照"))
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.WAITING)
    due_at = models.DateTimeField(_("计划时间"), default=timezone.now)
    next_at = models.DateTimeField(_("下次继续"), default=timezone.now)
    after_member_no = models.BigIntegerField(_("进度位置"), default=-1)
    # A worker running the run holds it until then (renewed with each chunk); a crashed
    # worker's lease runs out and the dispatcher hands the run to another.
    leased_until = models.DateTimeField(_("执行租约"), null=True, blank=True)
    total = models.PositiveIntegerField(_("人数"), default=0)
    done = models.PositiveIntegerField(_("已处理"), default=0)
    counts = models.JSONField(_("统计"), default=dict)
    error = models.TextField(_("错误"), blank=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("活动执行")
        verbose_name_plural = _("活动执行")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign", "occurrence"],
                                    name="campaign_run_occurrence_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "next_at"],
                                name="campaign_run_due_idx",
                                condition=Q(status__in=["waiting", "running"]))]


class Delivery(TenantModel):
    """What one run did for one member: each member is reached once per run."""

    class Status(models.TextChoices):
        SENT = "sent", _("已触达")
        CONTROL = "control", _("对照组")
        NO_CONSENT = "no_consent", _("未同意营销")
        CAPPED = "capped", _("超出频次上限")
        FAILED = "failed", _("失败")

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="deliveries", verbose_name=_("执行"))
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_constraint=False,
                                 db_index=False, related_name="+", verbose_name=_("活动"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices)
    results = models.JSONField(_("动作结果"), default=dict)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("触达记录")
        verbose_name_plural = _("触达记录")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "run", "member"], name="delivery_once_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "created_at"], name="delivery_member_idx",
                         condition=Q(status="sent")),
            models.Index(fields=["tenant", "campaign", "status"], name="delivery_campaign_idx"),
        ]


class AutomationRule(TenantModel):
    """When something happens to a member (the trigger), if they match the condition, do
    the action, now or after a delay; once per member per occurrence."""

    class Trigger(models.TextChoices):
        FOLLOWED = "followed", _("关注公众号")
        TIER_UP = "tier_up", _("等级提升")
        BIRTHDAY = "birthday", _("生日前 N 天")
        FIRST_PURCHASE = "first_purchase", _("首次购买")
        DORMANT = "dormant", _("进入沉睡")
        POINTS_EXPIRING = "points_expiring", _("积分 N 天内过期")
        JOINED_GROUP = "joined_group", _("加入客户群")

    name = models.CharField(_("名称"), max_length=128)
    trigger = models.CharField(_("触发"), max_length=16, choices=Trigger.choices)
    days = models.PositiveIntegerField(_("天数"), default=0,
                                       help_text=_("生日前 / 积分过期前的天数"))
    condition = models.JSONField(_("条件（人群表达式）"), null=True, blank=True)
    action = models.CharField(_("动作"), max_length=12, choices=ActionKind.choices)
    params = models.JSONField(_("动作参数"), default=dict)
    delay_minutes = models.PositiveIntegerField(_("延迟(分钟)"), default=0)
    respect_frequency_cap = models.BooleanField(_("遵守频次上限"), default=False)
    require_consent = models.BooleanField(_("仅同意营销的会员"), default=False)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("自动化规则")
        verbose_name_plural = _("自动化规则")
        indexes = [models.Index(fields=["tenant", "trigger", "is_active"],
                                name="automation_trigger_idx")]

    def __str__(self) -> str:
        return self.name


class AutomationFiring(TenantModel):
    """One rule firing for one member and one occurrence (the key: an order id, a tier
    change, a year's birthday): unique, so it fires once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("等待执行")
        DONE = "done", _("已执行")
        SKIPPED = "skipped", _("不满足条件")
        FAILED = "failed", _("失败")

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="firings", verbose_name=_("规则"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    occurrence = models.CharField(_("触发事件"), max_length=128)
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices,
                              default=Status.PENDING)
    due_at = models.DateTimeField(_("执行时间"), default=timezone.now)
    result = models.JSONField(_("结果"), default=dict)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("自动化执行")
        verbose_name_plural = _("自动化执行")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "rule", "member", "occurrence"],
                                    name="automation_firing_once_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "due_at"],
                                name="automation_firing_due_idx",
                                condition=Q(status="pending"))]
