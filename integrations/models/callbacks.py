"""Callbacks received from WeChat and WeCom (each once: retries and replays are recognised
by their de-duplication key), and the loss alerts some of them raise."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import StaffMembership, TenantModel


class CallbackEvent(TenantModel):
    class Source(models.TextChoices):
        OA = "oa", _("公众号")
        WECOM = "wecom", _("企业微信")

    class Status(models.TextChoices):
        RECEIVED = "received", _("已接收")
        PROCESSED = "processed", _("已处理")
        IGNORED = "ignored", _("已忽略")
        FAILED = "failed", _("处理失败")

    source = models.CharField(_("来源"), max_length=5, choices=Source.choices)
    account = models.CharField(_("账号"), max_length=32, help_text=_("AppID 或 CorpID"))
    dedupe_key = models.CharField(_("去重键"), max_length=255)
    event = models.CharField(_("事件"), max_length=64)
    payload = models.JSONField(_("内容"), default=dict)
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.RECEIVED)
    error = models.TextField(_("错误"), blank=True)
    received_at = models.DateTimeField(_("接收时间"), default=timezone.now)
    processed_at = models.DateTimeField(_("处理时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("回调事件")
        verbose_name_plural = _("回调事件")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "source", "dedupe_key"],
                                    name="callback_event_dedupe_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "-received_at"], name="callback_event_time_idx")]

    def __str__(self) -> str:
        return f"{self.source}:{self.event}"


class LossAlert(TenantModel):
    """流失提醒: a customer deleted their guide, or a guide deleted a customer."""

    class Kind(models.TextChoices):
        CUSTOMER_DELETED_GUIDE = "customer_deleted_guide", _("客户删除了导购")
        GUIDE_DELETED_CUSTOMER = "guide_deleted_customer", _("导购删除了客户")

    kind = models.CharField(_("类型"), max_length=24, choices=Kind.choices)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    relation = models.ForeignKey("integrations.ContactRelation", on_delete=models.CASCADE,
                                 db_constraint=False, db_index=False, related_name="+",
                                 verbose_name=_("客户关系"))
    guide = models.ForeignKey(StaffMembership, on_delete=models.SET_NULL, null=True,
                              blank=True, db_index=False, related_name="+",
                              verbose_name=_("导购"))
    guide_userid = models.CharField(_("导购 UserID"), max_length=64)
    store_id_at_alert = models.BigIntegerField(_("门店"), null=True, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    acknowledged_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    acknowledged_by = models.CharField(_("处理人"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("流失提醒")
        verbose_name_plural = _("流失提醒")
        indexes = [models.Index(fields=["tenant", "acknowledged_at", "-created_at"],
                                name="loss_alert_open_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_id}"
