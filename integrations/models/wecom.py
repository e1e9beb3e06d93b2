"""WeCom: the corp's members who serve customers (guides), their external contacts
(customers), the guide–customer relations as history, and customer groups with their
membership history."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from integrations.models.connections import WeComCorp
from members.models import Member
from scrm.models import StaffMembership, TenantModel


class WeComUser(TenantModel):
    """A corp member (成员); mapped to a staff login when one has their userid."""

    corp = models.ForeignKey(WeComCorp, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="users", verbose_name=_("企业微信"))
    userid = models.CharField(_("UserID"), max_length=64)
    name = models.CharField(_("姓名"), max_length=64, blank=True)
    staff = models.ForeignKey(StaffMembership, on_delete=models.SET_NULL, null=True,
                              blank=True, db_index=False, related_name="+",
                              verbose_name=_("员工"))
    is_follow_enabled = models.BooleanField(_("已开通客户联系"), default=True)
    is_active = models.BooleanField(_("在职"), default=True)
    resigned_at = models.DateTimeField(_("离职时间"), null=True, blank=True)
    synced_at = models.DateTimeField(_("同步时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("企业微信成员")
        verbose_name_plural = _("企业微信成员")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "corp", "userid"],
                                    name="wecom_user_corp_userid_uniq"),
        ]

    def __str__(self) -> str:
        return self.name or self.userid


class ExternalContact(TenantModel):
    """A customer (外部联系人) of the corp, linked to the member it is."""

    class Type(models.IntegerChoices):
        WECHAT = 1, _("微信用户")
        WECOM = 2, _("企业微信用户")

    corp = models.ForeignKey(WeComCorp, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="contacts", verbose_name=_("企业微信"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="wecom_contacts",
                               verbose_name=_("会员"))
    external_userid = models.CharField(_("ExternalUserID"), max_length=64)
    name = models.CharField(_("名称"), max_length=64, blank=True)
    type = models.PositiveSmallIntegerField(_("类型"), choices=Type.choices, default=Type.WECHAT)
    gender = models.PositiveSmallIntegerField(_("性别"), default=0)
    unionid = models.CharField(_("UnionID"), max_length=64, blank=True)
    corp_name = models.CharField(_("企业名称"), max_length=128, blank=True)
    avatar = models.URLField(_("头像"), max_length=500, blank=True)
    synced_at = models.DateTimeField(_("同步时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("企业微信客户")
        verbose_name_plural = _("企业微信客户")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "corp", "external_userid"],
                                    name="external_contact_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "member"], name="external_contact_member_idx")]

    def __str__(self) -> str:
        return self.name or self.external_userid


class ContactRelation(TenantModel):
    """One stint of a guide having a customer: opened when they became contacts, closed
    (never deleted) when either side deleted the other or the customer was transferred.
    A customer who comes back opens a new stint."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("正常")
        DELETED_BY_CUSTOMER = "deleted_by_customer", _("客户删除了员工")
        DELETED_BY_GUIDE = "deleted_by_guide", _("员工删除了客户")
        TRANSFERRED = "transferred", _("已转接")
        LOST = "lost", _("同步时已不存在")

    contact = models.ForeignKey(ExternalContact, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="relations",
                                verbose_name=_("客户"))
    user = models.ForeignKey(WeComUser, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="relations", verbose_name=_("员工"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False,
                               db_index=False, related_name="+", verbose_name=_("会员"))
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices,
                              default=Status.ACTIVE)
    remark = models.CharField(_("备注"), max_length=128, blank=True)
    description = models.CharField(_("描述"), max_length=255, blank=True)
    add_way = models.IntegerField(_("添加方式"), default=0)
    state = models.CharField(_("渠道参数"), max_length=64, blank=True)
    corp_tag_ids = models.JSONField(_("企业标签"), default=list, blank=True)
    added_at = models.DateTimeField(_("添加时间"))
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    synced_at = models.DateTimeField(_("同步时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("客户关系")
        verbose_name_plural = _("客户关系")
        constraints = [
            # At most one open stint per guide and customer.
            models.UniqueConstraint(fields=["tenant", "contact", "user"],
                                    condition=Q(status="active"),
                                    name="contact_relation_open_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "user", "status"], name="contact_relation_user_idx"),
            models.Index(fields=["tenant", "member"], name="contact_relation_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}→{self.contact_id} ({self.status})"


class GroupChat(TenantModel):
    """A customer group (客户群)."""

    class Status(models.IntegerChoices):
        NORMAL = 0, _("跟进人正常")
        RESIGNED = 1, _("跟进人离职")
        INHERITING = 2, _("离职继承中")
        INHERITED = 3, _("离职继承完成")

    corp = models.ForeignKey(WeComCorp, on_delete=models.CASCADE, db_constraint=False,
                             db_index=False, related_name="groups", verbose_name=_("企业微信"))
    chat_id = models.CharField(_("群 ID"), max_length=64)
    name = models.CharField(_("群名"), max_length=128, blank=True)
    owner = models.ForeignKey(WeComUser, on_delete=models.SET_NULL, null=True, blank=True,
                              db_constraint=False, db_index=False, related_name="+",
                              verbose_name=_("群主"))
    owner_userid = models.CharField(_("群主 UserID"), max_length=64, blank=True)
    notice = models.TextField(_("群公告"), blank=True)
    status = models.PositiveSmallIntegerField(_("状态"), choices=Status.choices,
                                              default=Status.NORMAL)
    member_count = models.PositiveIntegerField(_("群人数"), default=0)
    created_at_wecom = models.DateTimeField(_("建群时间"), null=True, blank=True)
    dismissed_at = models.DateTimeField(_("解散时间"), null=True, blank=True)
    synced_at = models.DateTimeField(_("同步时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("客户群")
        verbose_name_plural = _("客户群")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "corp", "chat_id"], name="group_chat_uniq"),
        ]

    def __str__(self) -> str:
        return self.name or self.chat_id


class GroupMember(TenantModel):
    """One stint of someone in a group: closed, not deleted, when they leave."""

    class Type(models.IntegerChoices):
        STAFF = 1, _("企业成员")
        EXTERNAL = 2, _("外部联系人")

    group = models.ForeignKey(GroupChat, on_delete=models.CASCADE, db_constraint=False,
                              db_index=False, related_name="memberships", verbose_name=_("群"))
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True,
                               db_constraint=False, db_index=False, related_name="+",
                               verbose_name=_("会员"))
    userid = models.CharField(_("成员 ID"), max_length=64)
    type = models.PositiveSmallIntegerField(_("类型"), choices=Type.choices)
    name = models.CharField(_("名称"), max_length=64, blank=True)
    join_scene = models.PositiveSmallIntegerField(_("入群方式"), default=0)
    invitor = models.CharField(_("邀请人"), max_length=64, blank=True)
    joined_at = models.DateTimeField(_("入群时间"), null=True, blank=True)
    left_at = models.DateTimeField(_("退群时间"), null=True, blank=True)
    quit_scene = models.PositiveSmallIntegerField(_("退群方式"), null=True, blank=True)

    class Meta:
        verbose_name = _("群成员")
        verbose_name_plural = _("群成员")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group", "userid"],
                                    condition=Q(left_at__isnull=True),
                                    name="group_member_open_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "member"], name="group_member_member_idx")]

    def __str__(self) -> str:
        return self.name or self.userid
