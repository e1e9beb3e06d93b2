"""Outbound messages: OA template messages per member, and WeCom mass-message tasks
(企业群发) with their per-customer results."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.models.connections import OAApp, WeComCorp
from members.models import Member
from scrm.models import TenantModel


class TemplateMessage(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        DELIVERED = "delivered", _("已送达")
        FAILED = "failed", _("失败")
        SKIPPED = "skipped", _("未发送")

    app = models.ForeignKey(OAApp, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="+", verbose_name=_("公众号"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    openid = models.CharField(_("OpenID"), max_length=64)
    template_id = models.CharField(_("模板 ID"), max_length=64)
    data = models.JSONField(_("内容"), default=dict)
    url = models.URLField(_("链接"), max_length=500, blank=True)
    # The platform's de-duplication id, and ours: a retried send is the same message.
    client_msg_id = models.CharField(_("去重 ID"), max_length=64)
    msgid = models.BigIntegerField(_("消息 ID"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=9, choices=Status.choices,
                              default=Status.PENDING)
    error = models.CharField(_("错误"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("送达时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("模板消息")
        verbose_name_plural = _("模板消息")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "app", "client_msg_id"],
                                    name="template_message_client_msg_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "app", "msgid"],
                                name="template_message_msgid_idx")]


class MassMessage(TenantModel):
    """A WeCom mass-message task (企业群发) for one guide: the guide confirms it in WeCom."""

    corp = models.ForeignKey(WeComCorp, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="+", verbose_name=_("企业微信"))
    sender_userid = models.CharField(_("发送员工"), max_length=64)
    text = models.TextField(_("内容"), blank=True)
    attachments = models.JSONField(_("附件"), default=list, blank=True)
    msgid = models.CharField(_("群发 ID"), max_length=64, blank=True)
    key = models.CharField(_("幂等键"), max_length=128)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    results_checked_at = models.DateTimeField(_("结果查询时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("企业群发")
        verbose_name_plural = _("企业群发")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "corp", "key"], name="mass_message_key_uniq"),
        ]


class MassMessageRecipient(TenantModel):
    class Status(models.IntegerChoices):
        UNSENT = 0, _("未发送")
        SENT = 1, _("已发送")
        NOT_FRIEND = 2, _("非好友，发送失败")
        LIMITED = 3, _("客户已收到其他群发，发送失败")
        SKIPPED = 9, _("超出接收上限，未提交")

    message = models.ForeignKey(MassMessage, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="recipients",
                                verbose_name=_("企业群发"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    external_userid = models.CharField(_("ExternalUserID"), max_length=64)
    status = models.PositiveSmallIntegerField(_("状态"), choices=Status.choices,
                                              default=Status.UNSENT)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("群发对象")
        verbose_name_plural = _("群发对象")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "message", "external_userid"],
                                    name="mass_recipient_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "external_userid", "sent_at"],
                                name="mass_recipient_limit_idx")]
