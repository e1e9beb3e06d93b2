"""RFM and lifecycle: each tenant's configuration, every member's current scores, segment
and stage, and the runs with their history (a roaring bitmap of member numbers per segment).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.rfm.codes import Segment, Stage
from members.models import Member
from scrm.models import Job, TenantModel

SEGMENT_LENGTH = 24


class RfmConfig(TenantModel):
    """How a tenant scores its members: the window, quintiles or the brand's own thresholds,
    and from which score on a dimension counts as high."""

    class Scoring(models.TextChoices):
        QUINTILE = "quintile", _("五分位")
        THRESHOLDS = "thresholds", _("自定义阈值")

    window_days = models.PositiveIntegerField(_("统计窗口(天)"), default=365)
    scoring = models.CharField(_("打分方式"), max_length=10, choices=Scoring.choices,
                               default=Scoring.QUINTILE)
    # Four ascending cut points each: R in days since the last order (within t1 days: 5),
    # F in orders and M in fen (at least t4: 5).
    r_thresholds = models.JSONField(_("R 阈值(天)"), default=list, blank=True)
    f_thresholds = models.JSONField(_("F 阈值(单)"), default=list, blank=True)
    m_thresholds = models.JSONField(_("M 阈值(分)"), default=list, blank=True)
    r_high = models.PositiveSmallIntegerField(_("R 高分起点"), default=3)
    f_high = models.PositiveSmallIntegerField(_("F 高分起点"), default=3)
    m_high = models.PositiveSmallIntegerField(_("M 高分起点"), default=3)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("RFM 设置")
        verbose_name_plural = _("RFM 设置")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="rfm_config_tenant_uniq")]

    def __str__(self) -> str:
        return f"RFM {self.window_days}d {self.scoring}"


class RfmRun(TenantModel):
    """One recompute: when, with which settings (and the cut points they gave), how many
    members landed in each segment, and how long it took."""

    class Status(models.TextChoices):
        TAGGING = "tagging", _("更新标签中")
        SUCCEEDED = "succeeded", _("已完成")

    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True,
                            db_constraint=False, db_index=False, related_name="+",
                            verbose_name=_("后台任务"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices,
                              default=Status.TAGGING)
    as_of = models.DateTimeField(_("计算时点"))
    window_start = models.DateTimeField(_("窗口起点"))
    config = models.JSONField(_("设置快照"), default=dict)
    counts = models.JSONField(_("各分群人数"), default=dict)
    members = models.PositiveIntegerField(_("会员数"), default=0)
    scored = models.PositiveIntegerField(_("有分群的会员"), default=0)
    changed = models.PositiveIntegerField(_("分群变化的会员"), default=0)
    timings = models.JSONField(_("各步耗时(毫秒)"), default=dict)
    duration_ms = models.PositiveIntegerField(_("耗时(毫秒)"), null=True, blank=True)
    triggered_by = models.CharField(_("发起人"), max_length=64, blank=True)
    started_at = models.DateTimeField(_("开始时间"))
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("RFM 计算")
        verbose_name_plural = _("RFM 计算")

    def __str__(self) -> str:
        return f"RFM #{self.pk} {self.as_of:%Y-%m-%d %H:%M}"


class RfmRunSegment(TenantModel):
    """The members (numbers) of one segment in one run; ``segment`` "all" holds every active
    member at the run, so "no segment" is all minus the eight."""

    run = models.ForeignKey(RfmRun, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="segments")
    segment = models.CharField(max_length=SEGMENT_LENGTH)
    member_count = models.PositiveIntegerField(default=0)
    bitmap = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "run", "segment"],
                                               name="rfm_run_segment_uniq")]


class MemberRfm(TenantModel):
    """A member's scores and segment as of the latest run that changed them (rewritten
    set-based by each run, only where something changed)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    member_no = models.PositiveIntegerField(_("会员编号"))
    last_order_at = models.DateTimeField(_("窗口内末单时间"), null=True, blank=True)
    frequency = models.PositiveIntegerField(_("窗口内订单数"), default=0)
    monetary_fen = models.BigIntegerField(_("窗口内消费(分)"), default=0)
    r = models.PositiveSmallIntegerField(null=True, blank=True)
    f = models.PositiveSmallIntegerField(null=True, blank=True)
    m = models.PositiveSmallIntegerField(null=True, blank=True)
    segment = models.CharField(_("分群"), max_length=SEGMENT_LENGTH, blank=True,
                               choices=Segment.choices)
    previous_segment = models.CharField(_("上一分群"), max_length=SEGMENT_LENGTH, blank=True,
                                        choices=Segment.choices)
    # The run that put the member in ``segment``.
    segment_run = models.ForeignKey(RfmRun, on_delete=models.SET_NULL, null=True, blank=True,
                                    db_constraint=False, db_index=False, related_name="+")
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("会员 RFM")
        verbose_name_plural = _("会员 RFM")
        constraints = [models.UniqueConstraint(fields=["tenant", "member"],
                                               name="member_rfm_member_uniq")]


class LifecycleConfig(TenantModel):
    """The thresholds of the lifecycle stages."""

    new_days = models.PositiveIntegerField(_("新客期(天)"), default=30)
    loyal_orders = models.PositiveIntegerField(_("忠诚：窗口内订单数"), default=5)
    loyal_spend_fen = models.BigIntegerField(_("忠诚：窗口内消费(分)，0 为不用"), default=0)
    loyal_window_days = models.PositiveIntegerField(_("忠诚窗口(天)"), default=365)
    dormant_days = models.PositiveIntegerField(_("沉睡：未购天数"), default=90)
    lost_days = models.PositiveIntegerField(_("流失：未购天数"), default=180)
    last_pass_at = models.DateTimeField(_("最近全量计算"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("生命周期设置")
        verbose_name_plural = _("生命周期设置")
        constraints = [models.UniqueConstraint(fields=["tenant"],
                                               name="lifecycle_config_tenant_uniq")]

    def __str__(self) -> str:
        return f"{self.dormant_days}/{self.lost_days}"


class MemberLifecycle(TenantModel):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    member_no = models.PositiveIntegerField(_("会员编号"))
    stage = models.CharField(_("阶段"), max_length=12, choices=Stage.choices)
    previous_stage = models.CharField(_("上一阶段"), max_length=12, blank=True,
                                      choices=Stage.choices)
    changed_at = models.DateTimeField(_("变化时间"))

    class Meta:
        verbose_name = _("会员生命周期")
        verbose_name_plural = _("会员生命周期")
        constraints = [models.UniqueConstraint(fields=["tenant", "member"],
                                               name="member_lifecycle_member_uniq")]
