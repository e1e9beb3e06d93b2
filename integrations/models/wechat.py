"""Official Account followers: the OA's own view of a member (follow state, scene, remark,
OA tags).  The member's ``wechat_openid`` identity is the link; this row is what only the OA
knows."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from integrations.models.connections import OAApp
from members.models import Member
from scrm.models import TenantModel


class Follower(TenantModel):
    app = models.ForeignKey(OAApp, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="followers", verbose_name=_("公众号"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="followers", verbose_name=_("会员"))
    openid = models.CharField(_("OpenID"), max_length=64)
    unionid = models.CharField(_("UnionID"), max_length=64, blank=True)
    is_subscribed = models.BooleanField(_("关注中"), default=True)
    subscribed_at = models.DateTimeField(_("关注时间"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("取关时间"), null=True, blank=True)
    subscribe_scene = models.CharField(_("关注渠道"), max_length=40, blank=True)
    qr_scene = models.CharField(_("二维码场景"), max_length=64, blank=True)
    remark = models.CharField(_("备注"), max_length=64, blank=True)
    language = models.CharField(_("语言"), max_length=16, blank=True)
    oa_tag_ids = models.JSONField(_("公众号标签"), default=list, blank=True)
    synced_at = models.DateTimeField(_("同步时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("公众号粉丝")
        verbose_name_plural = _("公众号粉丝")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "app", "openid"],
                                    name="follower_app_openid_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member"], name="follower_member_idx"),
            models.Index(fields=["tenant", "app", "is_subscribed"], name="follower_state_idx"),
        ]

    def __str__(self) -> str:
        return self.openid
