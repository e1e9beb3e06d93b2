"""Connections: a tenant's WeChat Official Accounts and WeCom corps.  Secrets are stored
encrypted (``scrm.crypto``); ``integrations.services.connections`` reads and writes them."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantModel


class CheckStatus(models.TextChoices):
    UNCHECKED = "unchecked", _("未检测")
    OK = "ok", _("正常")
    FAILED = "failed", _("异常")


class Connection(TenantModel):
    name = models.CharField(_("名称"), max_length=64)
    token_encrypted = models.TextField(_("Token（加密）"), blank=True)
    aes_key_encrypted = models.TextField(_("EncodingAESKey（加密）"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    check_status = models.CharField(_("检测结果"), max_length=9, choices=CheckStatus.choices,
                                    default=CheckStatus.UNCHECKED)
    check_message = models.TextField(_("检测说明"), blank=True)
    checked_at = models.DateTimeField(_("检测时间"), null=True, blank=True)
    last_sync_at = models.DateTimeField(_("上次同步"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        abstract = True


class OAApp(Connection):
    """A WeChat Official Account (公众号)."""

    class MessageMode(models.TextChoices):
        PLAIN = "plain", _("明文模式")
        COMPAT = "compat", _("兼容模式")
        SAFE = "safe", _("安全模式")

    appid = models.CharField(_("AppID"), max_length=32)
    secret_encrypted = models.TextField(_("AppSecret（加密）"))
    original_id = models.CharField(_("原始 ID"), max_length=32, blank=True)
    message_mode = models.CharField(_("消息加解密方式"), max_length=6,
                                    choices=MessageMode.choices, default=MessageMode.SAFE)

    class Meta:
        verbose_name = _("公众号")
        verbose_name_plural = _("公众号")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "appid"], name="oa_app_tenant_appid_uniq"),
        ]
        # Callbacks find their tenant by appid before any tenant is known.
        indexes = [models.Index(fields=["appid"], name="oa_app_appid_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.appid})"


class WeComCorp(Connection):
    """A WeCom (企业微信) corp, through its customer-contact (客户联系) secret and,
    optionally, a self-built app for OAuth and messages."""

    corpid = models.CharField(_("CorpID"), max_length=32)
    contact_secret_encrypted = models.TextField(_("客户联系 Secret（加密）"))
    agent_id = models.CharField(_("应用 AgentID"), max_length=16, blank=True)
    agent_secret_encrypted = models.TextField(_("应用 Secret（加密）"), blank=True)

    class Meta:
        verbose_name = _("企业微信")
        verbose_name_plural = _("企业微信")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "corpid"],
                                    name="wecom_corp_tenant_corpid_uniq"),
        ]
        indexes = [models.Index(fields=["corpid"], name="wecom_corp_corpid_idx",
                                condition=Q(is_active=True))]

    def __str__(self) -> str:
        return f"{self.name} ({self.corpid})"
