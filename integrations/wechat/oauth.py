"""OAuth2 in the browser: the member's H5 page (OA ``snsapi_base``, or ``snsapi_userinfo``
when the page wants a name) and the shopping guide's login through WeCom.

The ``state`` parameter is signed and short-lived, so a callback cannot be forged or
replayed from another session; WeChat's codes are single-use on their side too."""

import secrets

from django.contrib.auth import login
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from integrations.models import OAApp, WeComCorp
from integrations.services.connections import oa_api, wecom_agent_api
from integrations.wechat.client import WeChatApiError, oauth_base_url
from members.identities import normalize_identity
from members.models import IdentityKind, Member, SourceChannel
from members.services.people import Record, people_resolve
from scrm.access import Actor
from scrm.audit import audit_write
from scrm.middleware import SESSION_KEY
from scrm.models import StaffMembership
from scrm.tenancy import tenant_scope, unscoped_access

STATE_SALT = "wechat-oauth"
STATE_MAX_AGE = 600
H5_SESSION = "h5_member"


def _state(request: HttpRequest, **data) -> str:
    nonce = secrets.token_urlsafe(8)
    request.session["oauth_nonce"] = nonce
    return signing.dumps({"n": nonce, **data}, salt=STATE_SALT, compress=True)


def _state_read(request: HttpRequest) -> dict:
    try:
        data = signing.loads(request.GET.get("state", ""), salt=STATE_SALT,
                             max_age=STATE_MAX_AGE)
    except signing.BadSignature as exc:
        raise Http404 from exc
    if data.get("n") != request.session.pop("oauth_nonce", None):
        raise Http404
    return data


def _absolute(request: HttpRequest, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


def _connection(model, **lookup):
    with unscoped_access("find the account an OAuth page belongs to"):
        found = model.objects.unscoped().filter(is_active=True, **lookup).first()
    if found is None:
        raise Http404
    return found


# The member's H5 page


@require_GET
def member_page(request: HttpRequest, appid: str) -> HttpResponse:
    """The member card: who they are to the brand (level, points).  Unknown visitors are
    sent through OAuth first."""
    app = _connection(OAApp, appid=appid)
    member_id = request.session.get(H5_SESSION, {}).get(appid)
    if member_id is None:
        scope = "snsapi_userinfo" if request.GET.get("profile") == "1" else "snsapi_base"
        return redirect(oa_api(app).oauth_url(
            redirect_uri=_absolute(request, "h5-oauth-callback", appid), scope=scope,
            state=_state(request, scope=scope)))
    with tenant_scope(app.tenant_id):
        member = Member.objects.filter(pk=member_id).first()
        if member is None:
            request.session.pop(H5_SESSION, None)
            return redirect(request.path)
        return render(request, "h5/member.html", {"member": member, "app": app,
                                                  "card": _card(member)})


def _card(member: Member) -> dict:
    from points.selectors import member_levels, points_summary

    levels = member_levels(member_id=member.pk)
    summary = points_summary(member=member)
    return {"level": levels[0] if levels else None, "balance": summary["balance"],
            "expiring": summary["expiring_soon"]}


@require_GET
def member_oauth_callback(request: HttpRequest, appid: str) -> HttpResponse:
    app = _connection(OAApp, appid=appid)
    data = _state_read(request)
    code = request.GET.get("code")
    if not code:  # the visitor declined
        return render(request, "h5/declined.html", {"app": app}, status=403)
    try:
        result = oa_api(app).oauth_exchange(code, with_profile=data.get("scope") ==
                                            "snsapi_userinfo")
    except WeChatApiError as exc:
        return render(request, "h5/error.html", {"app": app, "error": exc}, status=400)
    with tenant_scope(app.tenant_id):
        member_id = _member_for(app, result)
    request.session.setdefault(H5_SESSION, {})[appid] = member_id
    request.session.modified = True
    return redirect("h5-member", appid)


def _member_for(app: OAApp, result: dict) -> int:
    identities = [normalize_identity(IdentityKind.WECHAT_OPENID, result["openid"], app.appid)]
    if result.get("unionid"):
        identities.append(normalize_identity(IdentityKind.WECHAT_UNIONID, result["unionid"]))
    profile = result.get("profile") or {}
    gender = {1: "male", 2: "female"}.get(profile.get("sex"), "unknown")
    record = Record(identities=identities, profile={
        "name": profile.get("nickname", ""), "gender": gender,
        "province": profile.get("province", ""), "city": profile.get("city", "")},
        first_touch={"channel": SourceChannel.WECHAT_OA, "appid": app.appid, "via": "h5"})
    (resolved,) = people_resolve(actor=Actor(tenant=app.tenant), records=[record],
                                 source_channel=SourceChannel.WECHAT_OA)
    if profile.get("nickname") and not resolved.created:
        Member.objects.filter(pk=resolved.member_id, name="").update(
            name=profile["nickname"][:64])
    return resolved.member_id


# The guide's login through WeCom


@require_GET
def guide_login(request: HttpRequest, corpid: str) -> HttpResponse:
    corp = _connection(WeComCorp, corpid=corpid)
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    query = {"appid": corp.corpid,
             "redirect_uri": _absolute(request, "guide-oauth-callback", corpid),
             "response_type": "code", "scope": "snsapi_base",
             "state": _state(request, next=target), "agentid": corp.agent_id}
    from urllib.parse import urlencode

    return redirect(f"{oauth_base_url()}/connect/oauth2/authorize?{urlencode(query)}"
                    f"#wechat_redirect")


@require_GET
def guide_oauth_callback(request: HttpRequest, corpid: str) -> HttpResponse:
    corp = _connection(WeComCorp, corpid=corpid)
    data = _state_read(request)
    try:
        user = wecom_agent_api(corp).oauth_user(request.GET.get("code", ""))
    except WeChatApiError as exc:
        return render(request, "h5/error.html", {"error": exc}, status=400)
    userid = user.get("userid") or user.get("UserId")
    staff = StaffMembership.objects.select_related("user").filter(
        tenant_id=corp.tenant_id, wecom_userid=userid, is_active=True).first() if userid else None
    if staff is None or not staff.user.is_active:
        audit_write(tenant_id=corp.tenant_id, actor_label="anonymous",
                    action="auth.login_failed", data={"via": "wecom_oauth",
                                                      "wecom_userid": userid or ""},
                    ip=request.META.get("REMOTE_ADDR"))
        return render(request, "h5/error.html", {"error": _(
            "该企业微信账号尚未开通导购登录，请联系管理员。")}, status=403)
    login(request, staff.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_KEY] = corp.tenant_id
    return redirect(data.get("next") or "/")
