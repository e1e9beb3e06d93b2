from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.models import OutboxEvent, TenantModel


class WebhookEndpoint(TenantModel):
    """A partner's URL that receives the tenant's events of the subscribed types."""

    name = models.CharField(_("名称"), max_length=64)
    url = models.URLField(_("地址"), max_length=500)
    secret_encrypted = models.TextField(_("签名密钥（加密）"))
    event_types = models.JSONField(_("订阅事件"), default=list)
    is_active = models.BooleanField(_("启用"), default=True)
    disabled_at = models.DateTimeField(_("停用时间"), null=True, blank=True)
    disabled_reason = models.CharField(_("停用原因"), max_length=255, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("连续失败次数"), default=0)
    failing_since = models.DateTimeField(_("开始失败时间"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("最近成功时间"), null=True, blank=True)
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("Webhook 端点")
        verbose_name_plural = _("Webhook 端点")
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_ep_tenant_idx")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "url"], name="webhook_ep_tenant_url_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(TenantModel):
    """One event to one endpoint: its attempts, the last answer, and when to try again.
    A replay is a new delivery of the same event."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SUCCEEDED = "succeeded", _("成功")
        FAILED = "failed", _("失败，待重试")
        DEAD = "dead", _("已放弃")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 db_constraint=False, related_name="deliveries",
                                 verbose_name=_("端点"))
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, db_constraint=False,
                              related_name="+", verbose_name=_("事件"))
    event_type = models.CharField(_("事件类型"), max_length=48)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices,
                              default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("最近尝试"), null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(_("响应码"), null=True, blank=True)
    response_excerpt = models.CharField(_("响应摘录"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("耗时（毫秒）"), null=True, blank=True)
    error = models.CharField(_("错误"), max_length=500, blank=True)
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                  db_constraint=False, related_name="+",
                                  verbose_name=_("重发自"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("Webhook 投递")
        verbose_name_plural = _("Webhook 投递")
        indexes = [
            models.Index(fields=["tenant", "endpoint", "-id"], name="webhook_dl_endpoint_idx"),
            models.Index(fields=["tenant", "event"], name="webhook_dl_event_idx"),
            # The due sweep's queue, across tenants: only unfinished deliveries are in it.
            models.Index(fields=["next_attempt_at"], name="webhook_dl_due_idx",
                         condition=models.Q(status__in=["pending", "failed"])),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id}"
