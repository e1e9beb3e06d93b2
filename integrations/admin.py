"""WeChat and WeCom in the admin: connections edited through the services (secrets typed in,
never shown back), with a connection check and sync actions; followers, customers,
relations, groups, channel codes, callbacks and loss alerts read-only."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from integrations.models import (
    CallbackEvent,
    ChannelCode,
    ContactRelation,
    ExternalContact,
    Follower,
    GroupChat,
    LossAlert,
    OAApp,
    WeComCorp,
)
from integrations.services import connections, followers, wecom
from members.admin import MemberVisibleMixin
from scrm.access import INTEGRATIONS_MANAGE, INTEGRATIONS_READ
from scrm.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_for_write, adopt
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id, tenant_scope


def _secret(label: str, required: bool = False) -> forms.CharField:
    return forms.CharField(label=label, required=required, widget=forms.PasswordInput(
        render_value=False), help_text=_("留空表示不修改"))


class OAAppForm(forms.ModelForm):
    secret = _secret(_("AppSecret"))
    token = _secret(_("Token"))
    aes_key = _secret(_("EncodingAESKey"))

    class Meta:
        model = OAApp
        fields = ("name", "appid", "original_id", "message_mode", "is_active")


class WeComCorpForm(forms.ModelForm):
    secret = _secret(_("客户联系 Secret"))
    token = _secret(_("Token"))
    aes_key = _secret(_("EncodingAESKey"))
    agent_secret = _secret(_("应用 Secret"))

    class Meta:
        model = WeComCorp
        fields = ("name", "corpid", "agent_id", "is_active")


class ConnectionAdmin(TenantScopedAdmin):
    view_scope = INTEGRATIONS_READ
    add_scope = change_scope = INTEGRATIONS_MANAGE
    readonly_fields = ("check_status", "check_message", "checked_at", "last_sync_at",
                       "last_error", "callback")
    actions = ["check_connections", "start_sync"]

    @admin.display(description=_("回调地址"))
    def callback(self, obj) -> str:
        return connections.callback_url(obj) if obj.pk else "-"

    def _write(self, request, obj, form):
        raise NotImplementedError

    def save_model(self, request, obj, form, change) -> None:
        tenant = Tenant.objects.get(pk=obj.tenant_id or require_tenant_id())
        blank_to_none = {name: form.cleaned_data.get(name) or None
                         for name in ("secret", "token", "aes_key", "agent_secret")
                         if name in form.cleaned_data}
        with tenant_scope(tenant):
            try:
                saved = self._write(actor_for_write(request, tenant), form, blank_to_none)
            except ApplicationError as exc:
                messages.error(request, str(exc.detail))
                raise
        adopt(obj, saved)

    @admin.action(description=_("检测连接"))
    def check_connections(self, request, queryset) -> None:
        for connection in queryset:
            report = connections.connection_check(connection=connection)
            level = messages.SUCCESS if report["ok"] else messages.WARNING
            messages.add_message(request, level, f"{connection}: " + (
                "; ".join(report["problems"]) or str(_("正常"))))

    @admin.action(description=_("开始同步"))
    def start_sync(self, request, queryset) -> None:
        tenant = Tenant.objects.get(pk=require_tenant_id())
        actor = actor_for_write(request, tenant)
        for connection in queryset:
            start = followers.followers_sync_start if isinstance(connection, OAApp) \
                else wecom.wecom_sync_start
            kwargs = {"app": connection} if isinstance(connection, OAApp) else {
                "corp": connection}
            job = start(actor=actor, **kwargs)
            messages.info(request, _("%(name)s：同步任务 #%(job)s 已开始") % {
                "name": connection, "job": job.pk})


@admin.register(OAApp)
class OAAppAdmin(ConnectionAdmin):
    form = OAAppForm
    list_display = ("name", "appid", "message_mode", "check_status", "last_sync_at",
                    "is_active")
    fields = ("name", "appid", "original_id", "message_mode", "secret", "token", "aes_key",
              "is_active", *ConnectionAdmin.readonly_fields)

    def _write(self, actor, form, secrets):
        data = form.cleaned_data
        return connections.oa_app_connect(
            actor=actor, appid=data["appid"], name=data["name"],
            message_mode=data["message_mode"], original_id=data.get("original_id", ""),
            secret=secrets.get("secret"), token=secrets.get("token"),
            aes_key=secrets.get("aes_key"))


@admin.register(WeComCorp)
class WeComCorpAdmin(ConnectionAdmin):
    form = WeComCorpForm
    list_display = ("name", "corpid", "agent_id", "check_status", "last_sync_at", "is_active")
    fields = ("name", "corpid", "agent_id", "secret", "agent_secret", "token", "aes_key",
              "is_active", *ConnectionAdmin.readonly_fields)

    def _write(self, actor, form, secrets):
        data = form.cleaned_data
        return connections.wecom_corp_connect(
            actor=actor, corpid=data["corpid"], name=data["name"],
            agent_id=data.get("agent_id", ""), secret=secrets.get("secret"),
            token=secrets.get("token"), aes_key=secrets.get("aes_key"),
            agent_secret=secrets.get("agent_secret"))


class IntegrationsReadOnlyAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = INTEGRATIONS_READ


@admin.register(Follower)
class FollowerAdmin(IntegrationsReadOnlyAdmin):
    list_display = ("openid", "member", "app", "is_subscribed", "subscribed_at",
                    "subscribe_scene", "qr_scene")
    list_filter = ("app", "is_subscribed", "subscribe_scene")
    list_select_related = ("member", "app")
    search_fields = ("=openid", "=unionid")
    fields = ("app", "member", "openid", "unionid", "is_subscribed", "subscribed_at",
              "unsubscribed_at", "subscribe_scene", "qr_scene", "remark", "language",
              "oa_tag_ids", "synced_at")


@admin.register(ExternalContact)
class ExternalContactAdmin(IntegrationsReadOnlyAdmin):
    list_display = ("name", "external_userid", "member", "corp", "type", "synced_at")
    list_filter = ("corp", "type")
    list_select_related = ("member", "corp")
    search_fields = ("=external_userid", "name")
    fields = ("corp", "member", "external_userid", "name", "type", "gender", "unionid",
              "corp_name", "synced_at")


@admin.register(ContactRelation)
class ContactRelationAdmin(IntegrationsReadOnlyAdmin):
    list_display = ("contact", "user", "status", "remark", "state", "added_at", "ended_at")
    list_filter = ("status", "user")
    list_select_related = ("contact", "user")
    fields = ("contact", "user", "member", "status", "remark", "description", "add_way",
              "state", "corp_tag_ids", "added_at", "ended_at")


@admin.register(GroupChat)
class GroupChatAdmin(ReadOnlyAdmin):
    view_scope = INTEGRATIONS_READ
    list_display = ("name", "chat_id", "owner", "member_count", "status", "dismissed_at")
    list_filter = ("corp", "status")
    list_select_related = ("owner",)
    search_fields = ("name", "=chat_id")
    fields = ("corp", "chat_id", "name", "owner", "notice", "status", "member_count",
              "created_at_wecom", "dismissed_at", "synced_at")


@admin.register(ChannelCode)
class ChannelCodeAdmin(ReadOnlyAdmin):
    view_scope = INTEGRATIONS_READ
    list_display = ("name", "kind", "channel", "campaign", "store", "scans", "new_members",
                    "is_active")
    list_filter = ("kind", "channel", "is_active")
    fields = ("kind", "name", "channel", "campaign", "store", "oa_app", "corp", "scene",
              "url", "config_id", "guide_userids", "tag_ids", "welcome_text", "scans",
              "new_members", "created_at")


@admin.register(CallbackEvent)
class CallbackEventAdmin(ReadOnlyAdmin):
    view_scope = INTEGRATIONS_MANAGE
    list_display = ("received_at", "source", "account", "event", "status", "error")
    list_filter = ("source", "status", "event")
    fields = ("source", "account", "event", "dedupe_key", "payload", "status", "error",
              "received_at", "processed_at")


@admin.register(LossAlert)
class LossAlertAdmin(IntegrationsReadOnlyAdmin):
    list_display = ("created_at", "kind", "member", "guide_userid", "acknowledged_at")
    list_filter = ("kind",)
    fields = ("kind", "member", "guide", "guide_userid", "created_at", "acknowledged_at",
              "acknowledged_by")
