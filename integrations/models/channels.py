"""Channel codes (渠道活码): an OA parametric QR code or a WeCom contact way, made for a
channel, store, guide or campaign.  Each scan, follow or add is an event, which is where the
code's statistics come from."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.models.connections import OAApp, WeComCorp
from members.models import Member
from scrm.models import Store, TenantModel


class ChannelCode(TenantModel):
    class Kind(models.TextChoices):
        OA_QR = "oa_qr", _("公众号带参二维码")
        WECOM_CONTACT = "wecom_contact", _("企业微信联系我")

    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("名称"), max_length=64)
    channel = models.CharField(_("渠道"), max_length=32, blank=True,
                               help_text=_("如 门店、海报、直播、朋友圈广告"))
    campaign = models.CharField(_("活动"), max_length=64, blank=True)
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True,
                              db_constraint=False, db_index=False, related_name="+",
                              verbose_name=_("门店"))
    oa_app = models.ForeignKey(OAApp, on_delete=models.CASCADE, null=True, blank=True,
                               db_constraint=False, db_index=False, related_name="+",
                               verbose_name=_("公众号"))
    corp = models.ForeignKey(WeComCorp, on_delete=models.CASCADE, null=True, blank=True,
                             db_constraint=False, db_index=False, related_name="+",
                             verbose_name=_("企业微信"))
    # The scene (OA) or state (WeCom) the platform hands back on a scan or add.
    scene = models.CharField(_("场景值"), max_length=64)
    is_permanent = models.BooleanField(_("永久"), default=True)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    ticket = models.CharField(_("Ticket"), max_length=255, blank=True)
    url = models.URLField(_("二维码内容"), max_length=500, blank=True)
    config_id = models.CharField(_("联系我 config_id"), max_length=64, blank=True)
    # WeCom: the guides the code rotates between (userids); one for a personal code.
    guide_userids = models.JSONField(_("接待员工"), default=list, blank=True)
    tag_ids = models.JSONField(_("自动标签"), default=list, blank=True)
    welcome_text = models.TextField(_("欢迎语"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    scans = models.PositiveIntegerField(_("扫码次数"), default=0)
    new_members = models.PositiveIntegerField(_("新增人数"), default=0)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("渠道活码")
        verbose_name_plural = _("渠道活码")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "scene"],
                                    name="channel_code_scene_uniq"),
            models.CheckConstraint(condition=Q(kind="oa_qr", oa_app__isnull=False)
                                   | Q(kind="wecom_contact", corp__isnull=False),
                                   name="channel_code_connection"),
        ]

    def __str__(self) -> str:
        return self.name


class ChannelEvent(TenantModel):
    class Kind(models.TextChoices):
        SCAN = "scan", _("扫码")
        FOLLOW = "follow", _("关注")
        ADD = "add", _("添加好友")

    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="events", verbose_name=_("渠道活码"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices)
    is_new_member = models.BooleanField(_("新会员"), default=False)
    guide_userid = models.CharField(_("接待员工"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("渠道活码记录")
        verbose_name_plural = _("渠道活码记录")
        indexes = [models.Index(fields=["tenant", "code", "occurred_at"], name="channel_event_idx")]
