from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import StaffMembership, Store, TenantModel


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("未知")
    MALE = "male", _("男")
    FEMALE = "female", _("女")


class SourceChannel(models.TextChoices):
    WECHAT_OA = "wechat_oa", _("公众号")
    WECOM = "wecom", _("企业微信")
    MINIAPP = "miniapp", _("小程序")
    STORE = "store", _("门店")
    TMALL = "tmall", _("天猫")
    JD = "jd", _("京东")
    DOUYIN = "douyin", _("抖音")
    IMPORT = "import", _("导入")
    API = "api", _("开放接口")
    OTHER = "other", _("其他")


class IdentityKind(models.TextChoices):
    WECHAT_OPENID = "wechat_openid", _("公众号 openid")
    WECHAT_UNIONID = "wechat_unionid", _("微信 unionid")
    WECOM_EXTERNAL_USERID = "wecom_external_userid", _("企业微信外部联系人")
    MINIAPP_OPENID = "miniapp_openid", _("小程序 openid")
    PHONE = "phone", _("手机号")
    EMAIL = "email", _("邮箱")
    EXTERNAL = "external", _("合作方 ID")


# Kinds whose value is personal data: stored encrypted, looked up by blind index.
SENSITIVE_KINDS = frozenset({IdentityKind.PHONE, IdentityKind.EMAIL})
# Kinds whose value only means something within one app (OA appid, mini-program, partner).
APP_SCOPED_KINDS = frozenset(
    {IdentityKind.WECHAT_OPENID, IdentityKind.MINIAPP_OPENID, IdentityKind.EXTERNAL}
)


class Member(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", _("正常")
        MERGED = "merged", _("已合并")
        ERASED = "erased", _("已删除个人信息")

    member_no = models.PositiveIntegerField(_("会员编号"))
    name = models.CharField(_("姓名"), max_length=64, blank=True)
    gender = models.CharField(
        _("性别"), max_length=8, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birthday = models.DateField(_("生日"), null=True, blank=True)
    province = models.CharField(_("省份"), max_length=32, blank=True)
    city = models.CharField(_("城市"), max_length=32, blank=True)
    phone_encrypted = models.TextField(blank=True)
    phone_hash = models.CharField(max_length=64, blank=True)
    phone_masked = models.CharField(_("手机号"), max_length=20, blank=True)
    source_channel = models.CharField(
        _("来源渠道"), max_length=16, choices=SourceChannel.choices, default=SourceChannel.API
    )
    first_touch = models.JSONField(_("首次触达"), default=dict, blank=True)
    store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="members",
        verbose_name=_("所属门店"),
    )
    guide = models.ForeignKey(
        StaffMembership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="members",
        verbose_name=_("专属导购"),
    )
    marketing_consent = models.BooleanField(_("同意营销"), default=False)
    # Profiling (rule tags, RFM and lifecycle, recommendations) until the member withdraws;
    # a database default too, since bulk loads insert members with SQL of their own.
    profiling_consent = models.BooleanField(_("允许用户画像"), default=True, db_default=True)
    consent_updated_at = models.DateTimeField(_("授权更新时间"), null=True, blank=True)
    erased_at = models.DateTimeField(_("个人信息删除时间"), null=True, blank=True)
    status = models.CharField(
        _("状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("合并到"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("会员")
        verbose_name_plural = _("会员")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_no"], name="member_tenant_no_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "store"], name="member_tenant_store_idx"),
            models.Index(fields=["tenant", "guide", "id"], name="member_tenant_guide_id_idx"),
            models.Index(fields=["tenant", "created_at"], name="member_tenant_created_idx"),
            models.Index(
                fields=["tenant", "phone_hash"],
                name="member_tenant_phone_idx",
                condition=~Q(phone_hash=""),
            ),
            models.Index(
                fields=["tenant", "merged_into"],
                name="member_tenant_merged_idx",
                condition=Q(merged_into__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.member_no}"


class MemberIdentity(TenantModel):
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="identities",
        verbose_name=_("会员"),
    )
    kind = models.CharField(_("类型"), max_length=32, choices=IdentityKind.choices)
    app_id = models.CharField(_("应用 ID"), max_length=64, blank=True, default="")
    # The plain value, or for personal data its blind index.
    value = models.CharField(_("值"), max_length=128)
    value_encrypted = models.TextField(blank=True)
    display = models.CharField(_("显示值"), max_length=128)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("会员身份")
        verbose_name_plural = _("会员身份")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "app_id", "value"], name="identity_tenant_kind_value_uniq"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "member"], name="identity_tenant_member_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.display}"


class MemberStats(TenantModel):
    """Order totals per member, kept current in the order's own transaction."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="stats"
    )
    order_count = models.PositiveIntegerField(_("订单数"), default=0)
    total_spent_fen = models.BigIntegerField(_("累计消费(分)"), default=0)
    refunded_fen = models.BigIntegerField(_("累计退款(分)"), default=0)
    first_order_at = models.DateTimeField(_("首单时间"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("末单时间"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("会员消费统计")
        verbose_name_plural = _("会员消费统计")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member"], name="stats_tenant_member_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.order_count} / {self.total_spent_fen}"


class MemberMerge(TenantModel):
    class Reason(models.TextChoices):
        AUTOMATIC = "automatic", _("身份自动合并")
        MANUAL = "manual", _("人工合并")

    survivor = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="merges",
        verbose_name=_("保留会员"),
    )
    merged = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("被合并会员"),
    )
    reason = models.CharField(_("原因"), max_length=16, choices=Reason.choices)
    actor = models.CharField(_("操作人"), max_length=64)
    moved = models.JSONField(_("迁移明细"), default=dict)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("会员合并记录")
        verbose_name_plural = _("会员合并记录")
        indexes = [
            models.Index(fields=["tenant", "survivor"], name="merge_tenant_survivor_idx"),
            models.Index(fields=["tenant", "merged"], name="merge_tenant_merged_idx"),
        ]


class TimelineEvent(TenantModel):
    class Kind(models.TextChoices):
        CREATED = "member.created", _("成为会员")
        UPDATED = "member.updated", _("资料更新")
        IDENTITY_ADDED = "identity.added", _("绑定身份")
        MERGED = "member.merged", _("会员合并")
        ORDER_PAID = "order.paid", _("下单")
        ORDER_REFUNDED = "order.refunded", _("退款")

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="timeline",
        verbose_name=_("会员"),
    )
    kind = models.CharField(_("事件"), max_length=32)
    occurred_at = models.DateTimeField(_("发生时间"))
    data = models.JSONField(_("内容"), default=dict)
    actor = models.CharField(_("操作人"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("会员时间线")
        verbose_name_plural = _("会员时间线")
        indexes = [
            models.Index(
                fields=["tenant", "member", "-occurred_at", "-id"], name="timeline_member_time_idx"
            ),
        ]


class OrderChannel(models.TextChoices):
    POS = "pos", _("门店 POS")
    MINIAPP = "miniapp", _("小程序商城")
    TMALL = "tmall", _("天猫")
    JD = "jd", _("京东")
    DOUYIN = "douyin", _("抖音")
    WECHAT_SHOP = "wechat_shop", _("微信小店")
    OTHER = "other", _("其他")


class Order(TenantModel):
    class Status(models.TextChoices):
        PAID = "paid", _("已支付")
        PARTIALLY_REFUNDED = "partially_refunded", _("部分退款")
        REFUNDED = "refunded", _("已退款")

    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
        related_name="orders",
        verbose_name=_("会员"),
    )
    channel = models.CharField(_("渠道"), max_length=16, choices=OrderChannel.choices)
    order_no = models.CharField(_("订单号"), max_length=64)
    store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="orders",
        verbose_name=_("门店"),
    )
    paid_at = models.DateTimeField(_("支付时间"))
    amount_fen = models.BigIntegerField(_("实付金额(分)"))
    refunded_fen = models.BigIntegerField(_("已退金额(分)"), default=0)
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.PAID)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("接收时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("订单")
        verbose_name_plural = _("订单")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "order_no"], name="order_tenant_channel_no_uniq"
            ),
            models.CheckConstraint(condition=Q(amount_fen__gte=0), name="order_amount_nonneg"),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("amount_fen")),
                name="order_refund_within_amount",
            ),
        ]
        indexes = [
            # A member's orders by time, with what they come to: sums over a guide's
            # customers' orders (the guide's sales and rank) read the index alone.
            models.Index(fields=["tenant", "member", "paid_at"],
                         include=["amount_fen", "refunded_fen"],
                         name="order_tenant_member_cover_idx"),
            models.Index(fields=["tenant", "paid_at"], name="order_tenant_paid_idx"),
            models.Index(fields=["tenant", "store", "paid_at"], name="order_tenant_store_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.order_no}"


class OrderLine(TenantModel):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="lines"
    )
    sku = models.CharField(_("SKU"), max_length=64)
    product = models.CharField(_("商品"), max_length=128)
    category = models.CharField(_("品类"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("数量"))
    price_fen = models.BigIntegerField(_("单价(分)"))

    class Meta:
        verbose_name = _("订单明细")
        verbose_name_plural = _("订单明细")
        indexes = [
            models.Index(fields=["tenant", "order"], name="orderline_tenant_order_idx"),
            models.Index(fields=["tenant", "sku"], name="orderline_tenant_sku_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_pos"),
            models.CheckConstraint(condition=Q(price_fen__gte=0), name="orderline_price_nonneg"),
        ]


class Refund(TenantModel):
    order = models.ForeignKey(
        Order,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="refunds",
        verbose_name=_("订单"),
    )
    refund_no = models.CharField(_("退款单号"), max_length=64)
    amount_fen = models.BigIntegerField(_("退款金额(分)"))
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("退款")
        verbose_name_plural = _("退款")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "order", "refund_no"], name="refund_tenant_order_no_uniq"
            ),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_pos"),
        ]


class MemberNote(TenantModel):
    """A shopping guide's note (备注) on a customer: on the guide's phone view and on the
    member's page.  Kept, with the author's name, when the author leaves."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="notes",
        verbose_name=_("会员"),
    )
    author = models.ForeignKey(
        StaffMembership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("作者"),
    )
    author_name = models.CharField(_("作者姓名"), max_length=64, blank=True)
    text = models.TextField(_("内容"))
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("客户备注")
        verbose_name_plural = _("客户备注")
        indexes = [
            models.Index(fields=["tenant", "member", "-created_at"], name="membernote_member_idx"),
        ]

    def __str__(self) -> str:
        return self.text[:20]


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("营销信息")
    PROFILING = "profiling", _("用户画像")


class ConsentSource(models.TextChoices):
    API = "api", _("开放接口")
    DASHBOARD = "dashboard", _("运营后台")
    IMPORT = "import", _("导入")
    WECHAT = "wechat", _("微信")
    SYSTEM = "system", _("系统")


class MemberConsent(TenantModel):
    """One statement of consent (or its withdrawal) for one purpose.  Never changed: the
    member's current consent is the latest row per purpose, mirrored on ``Member``."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="consents",
        verbose_name=_("会员"),
    )
    purpose = models.CharField(_("用途"), max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("同意"))
    source = models.CharField(_("来源"), max_length=16, choices=ConsentSource.choices)
    actor = models.CharField(_("操作人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("授权记录")
        verbose_name_plural = _("授权记录")
        indexes = [
            models.Index(fields=["tenant", "member", "purpose", "-id"],
                         name="consent_member_purpose_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose}={self.granted}"
