"""Referral (裂变) campaigns and lotteries (抽奖).

A referral campaign gives each inviter a personal invite (a code, an H5 link, an OA QR code);
a new person who follows through it is attributed to the inviter (first touch wins), and
the campaign's rewards go to the inviter and/or the invitee when the invitee follows,
registers (gives a phone) or buys for the first time, each once (``ReferralGrant`` keys);
milestone rewards go to inviters whose successful invites reach a number.  Refused and held
attributions are kept with their reason.

A lottery has prizes (each with its stock, taken by a conditional update) and "thanks for
playing"; members draw (limited per day and in total, optionally for points) or enter with
a product code (一物一码, usable once).  Every draw is recorded."""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import TenantModel


class RewardKind(models.TextChoices):
    """The actions of ``campaigns.services.actions`` a reward or a prize may be."""

    COUPON = "coupon", _("发优惠券")
    POINTS = "points", _("送积分")
    TAG = "tag", _("打标签")


class ReferralEvent(models.TextChoices):
    FOLLOW = "follow", _("关注公众号")
    REGISTRATION = "registration", _("注册会员(手机号)")
    FIRST_PURCHASE = "first_purchase", _("首次购买")


class ReferralCampaign(TenantModel):
    name = models.CharField(_("名称"), max_length=128)
    description = models.TextField(_("说明"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    starts_at = models.DateTimeField(_("开始时间"), default=timezone.now)
    ends_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    oa_appid = models.CharField(_("公众号 AppID"), max_length=64, blank=True,
                                help_text=_("邀请二维码所属公众号；留空使用已接入的第一个公众号"))
    qr_permanent = models.BooleanField(
        _("永久二维码"), default=False,
        help_text=_("公众号永久二维码数量有限（10 万个），邀请人少时才用；"
                    "否则为临时码（最长 30 天，到期自动重新生成）"))
    landing_url = models.URLField(
        _("落地页"), max_length=500, blank=True,
        help_text=_("邀请链接记录点击后跳转到这里（附 ref=邀请码）；留空显示内置落地页"))
    success_event = models.CharField(
        _("邀请成功条件"), max_length=16, choices=ReferralEvent.choices,
        default=ReferralEvent.FOLLOW, help_text=_("排行榜和阶梯奖励按成功邀请数计"))
    conversion_days = models.PositiveIntegerField(
        _("转化期(天)"), default=30, validators=[MinValueValidator(1)],
        help_text=_("被邀请人在归因后多少天内注册、首购才算数"))
    inviter_cap = models.PositiveIntegerField(_("每人邀请上限"), default=0,
                                              help_text=_("0 表示不限"))
    velocity_per_hour = models.PositiveIntegerField(
        _("每小时邀请上限"), default=0,
        help_text=_("一个邀请人一小时内超过这个数的邀请转人工审核；0 表示不限"))
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("裂变活动")
        verbose_name_plural = _("裂变活动")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__isnull=True)
                                   | Q(ends_at__gt=models.F("starts_at")),
                                   name="referral_campaign_window"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_open(self, at) -> bool:
        return self.is_active and self.starts_at <= at and (self.ends_at is None
                                                            or at < self.ends_at)


class ReferralReward(TenantModel):
    """One reward rule: on ``event`` of an invitee, ``kind`` for the inviter or the invitee;
    or, as a milestone, for an inviter whose successful invites reach ``threshold``."""

    class Event(models.TextChoices):
        FOLLOW = "follow", _("关注公众号")
        REGISTRATION = "registration", _("注册会员(手机号)")
        FIRST_PURCHASE = "first_purchase", _("首次购买")
        MILESTONE = "milestone", _("邀请人数达标")

    class Beneficiary(models.TextChoices):
        INVITER = "inviter", _("邀请人")
        INVITEE = "invitee", _("被邀请人")

    campaign = models.ForeignKey(ReferralCampaign, on_delete=models.CASCADE,
                                 db_constraint=False, db_index=False, related_name="rewards",
                                 verbose_name=_("裂变活动"))
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)
    event = models.CharField(_("触发"), max_length=16, choices=Event.choices)
    beneficiary = models.CharField(_("获得者"), max_length=8, choices=Beneficiary.choices)
    threshold = models.PositiveIntegerField(_("成功邀请数"), default=0,
                                            help_text=_("仅阶梯奖励：邀请成功达到这个数时发放"))
    kind = models.CharField(_("奖励"), max_length=8, choices=RewardKind.choices)
    # What each kind takes is in campaigns.services.actions.
    params = models.JSONField(_("参数"), default=dict)

    class Meta:
        verbose_name = _("裂变奖励")
        verbose_name_plural = _("裂变奖励")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "campaign", "event"],
                                name="referral_reward_event_idx")]


class ReferralInvite(TenantModel):
    """An inviter's personal invite in one campaign: the code behind the H5 link and the
    QR code's scene (``ref_<code>``)."""

    campaign = models.ForeignKey(ReferralCampaign, on_delete=models.CASCADE,
                                 db_constraint=False, db_index=False, related_name="invites",
                                 verbose_name=_("裂变活动"))
    inviter = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("邀请人"))
    code = models.CharField(_("邀请码"), max_length=40)
    clicks = models.PositiveIntegerField(_("链接点击"), default=0)
    qr_ticket = models.CharField(_("二维码 ticket"), max_length=255, blank=True)
    qr_url = models.URLField(_("二维码内容"), max_length=500, blank=True)
    qr_image_url = models.URLField(_("二维码图片"), max_length=1000, blank=True)
    qr_expires_at = models.DateTimeField(_("二维码过期时间"), null=True, blank=True)
    qr_generation = models.PositiveSmallIntegerField(_("二维码版本"), default=0)
    # The integrations app's channel code behind the QR (not a foreign key: campaigns do not
    # depend on integrations).
    qr_channel_code_id = models.BigIntegerField(_("渠道活码"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("邀请")
        verbose_name_plural = _("邀请")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign", "inviter"],
                                    name="referral_invite_once_uniq"),
            models.UniqueConstraint(fields=["tenant", "code"], name="referral_invite_code_uniq"),
        ]

    def __str__(self) -> str:
        return self.code


class ReferralClick(TenantModel):
    invite = models.ForeignKey(ReferralInvite, on_delete=models.CASCADE, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("邀请"))
    occurred_at = models.DateTimeField(_("时间"), default=timezone.now)
    ip_hash = models.CharField(_("IP 摘要"), max_length=32, blank=True)
    user_agent = models.CharField(_("浏览器"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("邀请链接点击")
        verbose_name_plural = _("邀请链接点击")
        indexes = [models.Index(fields=["tenant", "invite", "occurred_at"],
                                name="referral_click_idx")]


class ReferralAttribution(TenantModel):
    """A person arriving through an invite: attributed to the inviter, held for review
    (too many at once), or refused (with the reason).  One live (attributed or held)
    attribution per invitee and campaign: the first touch wins."""

    class Status(models.TextChoices):
        ATTRIBUTED = "attributed", _("已归因")
        HELD = "held", _("待审核")
        REFUSED = "refused", _("不计入")
        REJECTED = "rejected", _("审核未通过")
        INVALIDATED = "invalidated", _("已失效")

    class Reason(models.TextChoices):
        CAMPAIGN_INACTIVE = "campaign_inactive", _("活动未进行")
        SELF_INVITE = "self_invite", _("邀请自己")
        LOOP = "loop", _("互相邀请")
        ALREADY_ATTRIBUTED = "already_attributed", _("已被其他邀请归因")
        KNOWN_MEMBER = "known_member", _("老会员/已关注")
        CAP_REACHED = "cap_reached", _("邀请人已达上限")
        VELOCITY = "velocity", _("邀请过快，待审核")
        REVIEW_REJECTED = "review_rejected", _("审核未通过")
        MERGED_INTO_KNOWN = "merged_into_known", _("合并到老会员")

    class Source(models.TextChoices):
        FOLLOW = "follow", _("扫码关注")
        SCAN = "scan", _("已关注扫码")

    campaign = models.ForeignKey(ReferralCampaign, on_delete=models.CASCADE,
                                 db_constraint=False, db_index=False, related_name="+",
                                 verbose_name=_("裂变活动"))
    invite = models.ForeignKey(ReferralInvite, on_delete=models.CASCADE, db_constraint=False,
                               db_index=False, related_name="attributions",
                               verbose_name=_("邀请"))
    inviter = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("邀请人"))
    invitee = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("被邀请人"))
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices)
    reason = models.CharField(_("原因"), max_length=20, choices=Reason.choices, blank=True)
    source = models.CharField(_("来源"), max_length=8, choices=Source.choices)
    is_new_member = models.BooleanField(_("新会员"), default=False)
    occurred_at = models.DateTimeField(_("时间"))
    followed_at = models.DateTimeField(_("关注时间"), null=True, blank=True)
    registered_at = models.DateTimeField(_("注册时间"), null=True, blank=True)
    first_purchase_at = models.DateTimeField(_("首购时间"), null=True, blank=True)
    first_purchase_fen = models.BigIntegerField(_("首购金额(分)"), default=0)
    successful_at = models.DateTimeField(_("邀请成功时间"), null=True, blank=True)
    reviewed_by = models.CharField(_("审核人"), max_length=64, blank=True)
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    note = models.CharField(_("备注"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("记录时间"), default=timezone.now)

    class Meta:
        verbose_name = _("邀请归因")
        verbose_name_plural = _("邀请归因")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign", "invitee"],
                                    condition=Q(status__in=["attributed", "held"]),
                                    name="referral_first_touch_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "campaign", "inviter", "status"],
                         name="referral_attr_inviter_idx"),
            models.Index(fields=["tenant", "invitee"], name="referral_attr_invitee_idx"),
            models.Index(fields=["tenant", "campaign", "status", "id"],
                         name="referral_attr_list_idx"),
        ]


class ReferralGrant(TenantModel):
    """One reward given (or tried): unique by its key, so it is given once."""

    class Outcome(models.TextChoices):
        GRANTED = "granted", _("已发放")
        NOT_ISSUED = "not_issued", _("未发出(库存或限领)")
        FAILED = "failed", _("失败")

    campaign = models.ForeignKey(ReferralCampaign, on_delete=models.CASCADE,
                                 db_constraint=False, db_index=False, related_name="+",
                                 verbose_name=_("裂变活动"))
    attribution = models.ForeignKey(ReferralAttribution, on_delete=models.CASCADE,
                                    db_constraint=False, db_index=False,
                                    related_name="grants", verbose_name=_("归因"))
    reward_id = models.BigIntegerField(_("奖励规则"))  # the rule may be replaced later
    event = models.CharField(_("触发"), max_length=16, choices=ReferralReward.Event.choices)
    beneficiary = models.CharField(_("获得者"), max_length=8,
                                   choices=ReferralReward.Beneficiary.choices)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    kind = models.CharField(_("奖励"), max_length=8, choices=RewardKind.choices)
    params = models.JSONField(_("参数"), default=dict)
    key = models.CharField(_("幂等键"), max_length=160)
    outcome = models.CharField(_("结果"), max_length=12, choices=Outcome.choices)
    detail = models.CharField(_("说明"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("裂变奖励发放")
        verbose_name_plural = _("裂变奖励发放")
        constraints = [models.UniqueConstraint(fields=["tenant", "key"],
                                               name="referral_grant_key_uniq")]
        indexes = [models.Index(fields=["tenant", "attribution"], name="referral_grant_attr_idx")]


# Lotteries


class Lottery(TenantModel):
    name = models.CharField(_("名称"), max_length=128)
    description = models.TextField(_("说明"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    starts_at = models.DateTimeField(_("开始时间"), default=timezone.now)
    ends_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    allow_draw = models.BooleanField(_("活动抽奖"), default=True,
                                     help_text=_("会员直接抽奖（受次数限制，可消耗积分）"))
    allow_product_code = models.BooleanField(_("一物一码抽奖"), default=False,
                                             help_text=_("扫商品码抽奖，每个码只能用一次"))
    points_cost = models.PositiveIntegerField(_("每次消耗积分"), default=0)
    daily_limit = models.PositiveIntegerField(_("每人每天次数"), default=1,
                                              help_text=_("0 表示不限"))
    total_limit = models.PositiveIntegerField(_("每人总次数"), default=0,
                                              help_text=_("0 表示不限"))
    tier_weighted = models.BooleanField(_("按等级加权"), default=True,
                                        help_text=_("中奖概率乘以会员等级的抽奖权重"))
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("抽奖")
        verbose_name_plural = _("抽奖")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__isnull=True)
                                   | Q(ends_at__gt=models.F("starts_at")),
                                   name="lottery_window"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_open(self, at) -> bool:
        return self.is_active and self.starts_at <= at and (self.ends_at is None
                                                            or at < self.ends_at)


class LotteryPrize(TenantModel):
    class Kind(models.TextChoices):
        REWARD = "reward", _("奖品")
        THANKS = "thanks", _("谢谢参与")

    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="prizes", verbose_name=_("抽奖"))
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)
    name = models.CharField(_("名称"), max_length=64)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices, default=Kind.REWARD)
    action = models.CharField(_("奖励"), max_length=8, choices=RewardKind.choices, blank=True)
    params = models.JSONField(_("参数"), default=dict, blank=True)
    weight = models.PositiveIntegerField(_("权重"), default=1, validators=[MinValueValidator(1)])
    # What is left to give; taken with ``stock > 0`` in the update, so never oversold.
    stock = models.PositiveIntegerField(_("剩余库存"), default=0)
    awarded = models.PositiveIntegerField(_("已中出"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("奖品")
        verbose_name_plural = _("奖品")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "lottery"], name="lottery_prize_idx")]

    def __str__(self) -> str:
        return self.name


class LotteryParticipant(TenantModel):
    """A member's draws in a lottery: the counters the limits are checked on, in the same
    conditional update that counts the draw (its row lock serialises one member's draws)."""

    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("抽奖"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    draws_total = models.PositiveIntegerField(_("抽奖次数"), default=0)
    day = models.DateField(_("日期"), null=True, blank=True)
    draws_today = models.PositiveIntegerField(_("当日次数"), default=0)
    code_draws = models.PositiveIntegerField(_("扫码次数"), default=0)

    class Meta:
        verbose_name = _("抽奖参与")
        verbose_name_plural = _("抽奖参与")
        constraints = [models.UniqueConstraint(fields=["tenant", "lottery", "member"],
                                               name="lottery_participant_uniq")]


class LotteryCode(TenantModel):
    """A product code (一物一码) that enters its lottery once."""

    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="codes", verbose_name=_("抽奖"))
    code = models.CharField(_("商品码"), max_length=64)
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True,
                               db_constraint=False, db_index=False, related_name="+",
                               verbose_name=_("使用会员"))
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("商品码")
        verbose_name_plural = _("商品码")
        constraints = [models.UniqueConstraint(fields=["tenant", "code"],
                                               name="lottery_code_uniq")]
        indexes = [models.Index(fields=["tenant", "lottery", "used_at"],
                                name="lottery_code_lottery_idx")]


class LotteryDraw(TenantModel):
    class Outcome(models.TextChoices):
        WON = "won", _("中奖")
        THANKS = "thanks", _("谢谢参与")

    class Source(models.TextChoices):
        DRAW = "draw", _("活动抽奖")
        PRODUCT_CODE = "product_code", _("一物一码")

    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="draws", verbose_name=_("抽奖"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    prize = models.ForeignKey(LotteryPrize, on_delete=models.PROTECT, db_constraint=False,
                              db_index=False, related_name="+", verbose_name=_("奖品"))
    outcome = models.CharField(_("结果"), max_length=8, choices=Outcome.choices)
    source = models.CharField(_("方式"), max_length=12, choices=Source.choices)
    product_code = models.CharField(_("商品码"), max_length=64, blank=True)
    points_spent = models.PositiveIntegerField(_("消耗积分"), default=0)
    weight_multiplier = models.PositiveIntegerField(_("等级权重"), default=1)
    reward_outcome = models.CharField(_("奖励结果"), max_length=32, blank=True)
    idempotency_key = models.CharField(_("幂等键"), max_length=255, null=True,  # noqa: DJ001
                                       blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("抽奖记录")
        verbose_name_plural = _("抽奖记录")
        constraints = [models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                               name="lottery_draw_idem_uniq")]
        indexes = [models.Index(fields=["tenant", "lottery", "member", "created_at"],
                                name="lottery_draw_member_idx")]
