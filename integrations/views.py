"""HTML views of WeChat and WeCom: the dashboard's followers, groups and channel
attribution; connection settings (secrets write-only) with their check, sync and progress;
channel codes with their statistics; a member's WeChat relations; a guide's new contacts."""

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from integrations.api import ChannelCodeInput, OAAppInput, WeComCorpInput
from integrations.models import ChannelCode, Follower, OAApp, WeComCorp
from integrations.models.wecom import ContactRelation
from integrations.services import channels, connections, followers, wecom
from members.selectors import member_get
from scrm import charts
from scrm.access import INTEGRATIONS_MANAGE, INTEGRATIONS_READ, MEMBERS_READ, Actor
from scrm.api.errors import ApplicationError
from scrm.models import Job, Store
from scrm.reports import report_value
from scrm.web import error_text, page, period_of, validated

NEW_CONTACT_DAYS = 3


@page(INTEGRATIONS_READ, whole_tenant=True)
def panel_channels(request: HttpRequest) -> HttpResponse:
    days = period_of(request)
    report = report_value(actor=request.actor, name="channels", period=days)
    return render(request, "integrations/panel_channels.html", {
        "report": report, "period": days,
        "code_chart": charts.bars([row["code__name"] for row in report["by_code"]], {
            _("扫码/添加"): [row["scans"] for row in report["by_code"]],
            _("新会员"): [row["new"] for row in report["by_code"]]}, horizontal=True)})


def _sync_state(connection) -> Job | None:
    kind = followers.JOB_KIND if isinstance(connection, OAApp) else wecom.JOB_KIND
    key = "params__app_id" if isinstance(connection, OAApp) else "params__corp_id"
    return Job.objects.filter(kind=kind, **{key: connection.pk}).order_by("-pk").first()


def _connection_row(kind: str, connection) -> dict:
    return {"kind": kind, "connection": connection,
            "callback": connections.callback_url(connection), "job": _sync_state(connection)}


@page(INTEGRATIONS_READ, whole_tenant=True)
def connection_list(request: HttpRequest) -> HttpResponse:
    rows = [_connection_row("oa", app) for app in OAApp.objects.order_by("pk")]
    rows += [_connection_row("wecom", corp) for corp in WeComCorp.objects.order_by("pk")]
    return render(request, "integrations/connections.html", {
        "rows": rows, "can_manage": request.actor.can(INTEGRATIONS_MANAGE),
        "modes": OAApp.MessageMode.choices})


@page(INTEGRATIONS_READ, whole_tenant=True)
def connection_row(request: HttpRequest, kind: str, connection_id: int) -> HttpResponse:
    """One connection's row, polled while its sync runs."""
    return render(request, "integrations/_connection_row.html", {
        "row": _connection_row(kind, _connection(kind, connection_id)),
        "can_manage": request.actor.can(INTEGRATIONS_MANAGE)})


FORM_FIELDS = {"oa": ("appid", "secret", "name", "token", "aes_key", "message_mode"),
               "wecom": ("corpid", "secret", "name", "token", "aes_key", "agent_id",
                         "agent_secret")}


@require_POST
@page(INTEGRATIONS_MANAGE, whole_tenant=True)
def connection_save(request: HttpRequest, kind: str) -> HttpResponse:
    """Connect (or update) an OA or a WeCom corp; empty secret fields keep what is stored."""
    if kind not in FORM_FIELDS:
        raise Http404
    data = {key: request.POST[key].strip() for key in FORM_FIELDS[kind]
            if request.POST.get(key, "").strip()}
    try:
        if kind == "oa":
            connections.oa_app_connect(actor=request.actor, **validated(OAAppInput, data))
        else:
            connections.wecom_corp_connect(actor=request.actor,
                                           **validated(WeComCorpInput, data))
        messages.success(request, _("已保存连接。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("web:integrations")


def _connection(kind: str, connection_id: int):
    model = {"oa": OAApp, "wecom": WeComCorp}.get(kind)
    found = model.objects.filter(pk=connection_id).first() if model else None
    if found is None:
        raise Http404
    return found


@require_POST
@page(INTEGRATIONS_MANAGE, whole_tenant=True)
def connection_check(request: HttpRequest, kind: str, connection_id: int) -> HttpResponse:
    result = connections.connection_check(connection=_connection(kind, connection_id))
    if result["ok"]:
        messages.success(request, _("检测通过。"))
    else:
        messages.error(request, "；".join(result["problems"]))
    return redirect("web:integrations")


@require_POST
@page(INTEGRATIONS_MANAGE, whole_tenant=True)
def connection_sync(request: HttpRequest, kind: str, connection_id: int) -> HttpResponse:
    connection = _connection(kind, connection_id)
    try:
        if kind == "oa":
            followers.followers_sync_start(actor=request.actor, app=connection)
        else:
            wecom.wecom_sync_start(actor=request.actor, corp=connection)
        messages.success(request, _("同步已开始，进度见下方。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("web:integrations")


@page(INTEGRATIONS_READ)
def channel_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.actor.can(INTEGRATIONS_MANAGE)
    if request.method == "POST" and can_manage:
        try:
            data = {key: value.strip() for key, value in request.POST.items()
                    if key in ("kind", "name", "channel", "campaign", "welcome_text", "oa_app",
                               "corp") and value.strip()}
            guides = [g.strip() for g in request.POST.get("guide_userids", "").split(",")
                      if g.strip()]
            values = validated(ChannelCodeInput, {**data, "guide_userids": guides})
            store = Store.objects.filter(pk=request.POST.get("store") or 0).first()
            values["oa_app"] = OAApp.objects.filter(pk=values.pop("oa_app", 0)).first()
            values["corp"] = WeComCorp.objects.filter(pk=values.pop("corp", 0)).first()
            code = channels.channel_code_create(actor=request.actor, store=store, **values)
            messages.success(request, _("渠道活码“%(name)s”已创建。") % {"name": code.name})
            return redirect("web:channels-detail", code_id=code.pk)
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    return render(request, "integrations/channels.html", {
        "codes": ChannelCode.objects.select_related("store").order_by("-pk")[:200],
        "can_manage": can_manage, "kinds": ChannelCode.Kind.choices,
        "apps": OAApp.objects.order_by("pk"), "corps": WeComCorp.objects.order_by("pk"),
        "stores": Store.objects.order_by("code")})


@page(INTEGRATIONS_READ)
def channel_detail(request: HttpRequest, code_id: int) -> HttpResponse:
    code = ChannelCode.objects.select_related("store").filter(pk=code_id).first()
    if code is None:
        raise Http404
    return render(request, "integrations/channel_detail.html", {
        "code": code, "stats": channels.channel_code_stats(code=code)})


@page(MEMBERS_READ)
def member_wechat(request: HttpRequest, member_id: int) -> HttpResponse:
    member = member_get(actor=request.actor, member_id=member_id)
    if member is None:
        raise Http404
    return render(request, "integrations/_member_wechat.html", {
        "follows": Follower.objects.filter(member=member).select_related("app"),
        "relations": ContactRelation.objects.filter(member=member).select_related(
            "user").order_by("-added_at")[:20]})


def new_contacts(*, actor: Actor, days: int = NEW_CONTACT_DAYS):
    """The guide's WeCom contacts added in the last ``days`` days, to greet."""
    since = timezone.now() - dt.timedelta(days=days)
    return ContactRelation.objects.filter(
        user__staff_id=actor.guide_id, status=ContactRelation.Status.ACTIVE,
        added_at__gte=since).select_related("contact", "member").order_by("-added_at")[:20]


@page(MEMBERS_READ)
def guide_task_contacts(request: HttpRequest) -> HttpResponse:
    contacts = new_contacts(actor=request.actor) if request.actor.guide_id else []
    return render(request, "integrations/_task_contacts.html", {"contacts": contacts})
