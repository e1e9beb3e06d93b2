import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm import tenancy


class Tenant(models.Model):
    """One paying account: a single brand, or a group company with several brands."""

    slug = models.SlugField(_("标识"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=128)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("租户")
        verbose_name_plural = _("租户")

    def __str__(self) -> str:
        return self.name


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager):
    """Scopes every query to the tenant in context and refuses to run without one."""

    def get_queryset(self) -> models.QuerySet:
        queryset = TenantQuerySet(self.model, using=self._db)
        if tenancy.is_unscoped():
            return queryset
        return queryset.filter(tenant_id=tenancy.require_tenant_id())

    def unscoped(self) -> models.QuerySet:
        """Every tenant's rows as far as the ORM goes (row-level security still applies)."""
        return TenantQuerySet(self.model, using=self._db)


class TenantModel(models.Model):
    # The database constraint is added by scrm.db.operations.TenantIsolation, only where no
    # composite reference already implies it (each foreign-key check costs ~20 µs a row).
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
        verbose_name=_("租户"),
    )

    objects = TenantManager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.tenant_id is None:
            self.tenant_id = tenancy.require_tenant_id()
        super().save(*args, **kwargs)


class Brand(TenantModel):
    name = models.CharField(_("名称"), max_length=128)
    code = models.SlugField(_("编码"), max_length=64)

    class Meta:
        verbose_name = _("品牌")
        verbose_name_plural = _("品牌")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="brand_tenant_code_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class Store(TenantModel):
    code = models.CharField(_("门店编码"), max_length=64)
    name = models.CharField(_("门店名称"), max_length=128)
    brand = models.ForeignKey(
        Brand,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="stores",
        verbose_name=_("品牌"),
    )
    region = models.CharField(_("大区"), max_length=64, blank=True)
    province = models.CharField(_("省份"), max_length=32, blank=True)
    city = models.CharField(_("城市"), max_length=32, blank=True)
    is_active = models.BooleanField(_("营业中"), default=True)

    class Meta:
        verbose_name = _("门店")
        verbose_name_plural = _("门店")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="store_tenant_code_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Role(models.TextChoices):
    OWNER = "owner", _("所有者")
    BRAND_OPERATOR = "brand_operator", _("品牌运营")
    CHANNEL_OPERATOR = "channel_operator", _("渠道运营")
    STORE_MANAGER = "store_manager", _("店长")
    GUIDE = "guide", _("导购")
    CUSTOMER_SERVICE = "customer_service", _("客服")
    ANALYST = "analyst", _("分析师(只读)")


class StaffMembership(models.Model):
    """A login's role in one tenant.  Global (no row-level security): it is how a request
    finds its tenant in the first place."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("用户"),
    )
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
        verbose_name=_("租户"),
    )
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices)
    store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="staff",
        verbose_name=_("门店"),
    )
    display_name = models.CharField(_("显示名"), max_length=64, blank=True)
    wecom_userid = models.CharField(_("企业微信 userid"), max_length=64, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("员工")
        verbose_name_plural = _("员工")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="staff_tenant_user_uniq"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()


class ApiKey(models.Model):
    """A partner system's key.  Only a SHA-256 of the secret is stored; the prefix finds it."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("租户")
    )
    name = models.CharField(_("名称"), max_length=128)
    prefix = models.CharField(_("前缀"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(_("权限范围"), default=list)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("API 密钥")
        verbose_name_plural = _("API 密钥")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        prefix = secrets.token_hex(4)
        return prefix, f"sk_{prefix}_{secrets.token_urlsafe(32)}"


class IdempotencyRecord(TenantModel):
    """The first answer to a POST with an ``Idempotency-Key``, replayed on retries."""

    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_tenant_key_uniq"),
        ]

    def __str__(self) -> str:
        return self.key


class AuditEntry(TenantModel):
    """Who did or saw what: full views of personal data, merges, key changes.  Append-only."""

    actor = models.CharField(_("操作人"), max_length=64)
    action = models.CharField(_("操作"), max_length=64)
    target_type = models.CharField(_("对象类型"), max_length=32, blank=True)
    target_id = models.BigIntegerField(_("对象 ID"), null=True, blank=True)
    data = models.JSONField(_("详情"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("审计日志")
        verbose_name_plural = _("审计日志")
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time_idx"),
            models.Index(fields=["tenant", "target_type", "target_id"],
                         name="audit_tenant_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action}"


class Job(TenantModel):
    """Long work run by a Celery task (bulk tagging, snapshots, exports): progress the
    dashboard shows, and a checkpoint the task resumes from after a crash."""

    class Status(models.TextChoices):
        PENDING = "pending", _("排队中")
        RUNNING = "running", _("进行中")
        SUCCEEDED = "succeeded", _("已完成")
        FAILED = "failed", _("失败")

    kind = models.CharField(_("类型"), max_length=32)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices,
                              default=Status.PENDING)
    params = models.JSONField(_("参数"), default=dict)
    payload = models.BinaryField(null=True)
    total = models.PositiveIntegerField(_("总数"), default=0)
    done = models.PositiveIntegerField(_("已完成"), default=0)
    checkpoint = models.JSONField(default=dict)
    result = models.JSONField(_("结果"), default=dict)
    error = models.TextField(_("错误"), blank=True)
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("后台任务")
        verbose_name_plural = _("后台任务")
        indexes = [models.Index(fields=["tenant", "-created_at"], name="job_tenant_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class OutboxEvent(TenantModel):
    """A domain event written in the transaction of the change it describes (the outbox):
    it exists exactly when the change committed.  The webhook relay fans it out to the
    tenant's endpoints and stamps ``relayed_at``; relayed events are purged after
    WEBHOOK_RETENTION_DAYS.  See scrm/events.py for the types and their payloads."""

    event_id = models.UUIDField(_("事件 ID"))
    type = models.CharField(_("类型"), max_length=48)
    occurred_at = models.DateTimeField(_("发生时间"))
    data = models.JSONField(_("数据"), default=dict)
    relayed_at = models.DateTimeField(_("转发时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("事件发件箱")
        verbose_name_plural = _("事件发件箱")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event_id"], name="outbox_tenant_event_uniq"),
        ]
        indexes = [
            # The relay's queue: only unrelayed rows are in it, so it stays tiny.
            models.Index(fields=["id"], name="outbox_pending_idx",
                         condition=models.Q(relayed_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
