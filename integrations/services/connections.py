"""Connecting Official Accounts and WeCom corps: credentials stored encrypted, checked
against the platform, and the API clients built from them."""

import base64
import binascii
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import OAApp, WeComCorp
from integrations.models.connections import CheckStatus
from integrations.wechat.client import OAApi, WeChatApiError, WeComApi
from scrm import crypto
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record

# What an errcode means to the person who typed the credentials in.
CREDENTIAL_PROBLEMS = {
    40001: gettext_lazy("AppSecret / Secret 不正确，或已在微信后台重置。"),
    40013: gettext_lazy("AppID / CorpID 不正确。"),
    40125: gettext_lazy("AppSecret 不正确，或已在公众号后台重置。"),
    40164: gettext_lazy(
        "服务器 IP 不在公众号的 IP 白名单中：请在公众号后台把本服务的出口 IP 加入白名单。"),
    48002: gettext_lazy(
        "该 Secret 没有客户联系权限：请使用“客户联系”的 Secret，或把应用加入“可调用应用”。"),
    60011: gettext_lazy("该 Secret 的可见范围不包含这些成员：请在企业微信后台调整可见范围。"),
    45009: gettext_lazy("调用次数已达上限，请稍后再检测。"),
}


def aes_key_problem(aes_key: str) -> str:
    """"" when ``aes_key`` is a usable EncodingAESKey (43 characters of base64, 32 bytes)."""
    if not aes_key:
        return ""
    if len(aes_key) != 43:
        return _("EncodingAESKey 应为 43 个字符（当前 %(n)s 个）。") % {"n": len(aes_key)}
    try:
        if len(base64.b64decode(aes_key + "=")) != 32:
            raise binascii.Error
    except (binascii.Error, ValueError):
        return _("EncodingAESKey 不是有效的 Base64 字符串。")
    return ""


def _validate(*, token: str, aes_key: str, message_mode: str = "") -> None:
    problem = aes_key_problem(aes_key)
    if problem:
        raise ApplicationError(problem, code="invalid_aes_key", fields={"aes_key": [problem]})
    if token and not (3 <= len(token) <= 32 and token.isalnum()):
        message = _("Token 应为 3 到 32 位字母或数字。")
        raise ApplicationError(message, code="invalid_token", fields={"token": [message]})
    if token and message_mode in (OAApp.MessageMode.SAFE, OAApp.MessageMode.COMPAT) \
            and not aes_key:
        message = _("安全模式和兼容模式需要 EncodingAESKey。")
        raise ApplicationError(message, code="invalid_aes_key", fields={"aes_key": [message]})


def _store_secrets(connection, secrets: dict[str, str]) -> None:
    for field, value in secrets.items():
        if value is not None:
            setattr(connection, field, crypto.encrypt(value) if value else "")


def _save(connection, message: str):
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError as exc:
        raise Conflict(message, code="connection_exists") from exc
    return connection


@transaction.atomic
def oa_app_connect(*, actor: Actor, appid: str, secret: str | None = None, name: str = "",
                   token: str | None = None, aes_key: str | None = None,
                   message_mode: str = OAApp.MessageMode.SAFE, original_id: str = "",
                   check: bool = True) -> OAApp:
    """Connect an Official Account, or change its credentials (a None leaves one as it
    is); then check the connection unless told not to."""
    app = OAApp.objects.filter(appid=appid).first()
    creating = app is None
    if creating and not secret:
        raise ApplicationError(_("请填写 AppSecret。"), code="secret_required",
                               fields={"secret": [_("必填")]})
    app = app or OAApp(tenant_id=actor.tenant.pk, appid=appid)
    current_token = crypto.decrypt(app.token_encrypted) if app.token_encrypted else ""
    current_key = crypto.decrypt(app.aes_key_encrypted) if app.aes_key_encrypted else ""
    _validate(token=current_token if token is None else token,
              aes_key=current_key if aes_key is None else aes_key, message_mode=message_mode)
    app.name, app.message_mode = name or app.name or appid, message_mode
    app.original_id = original_id or app.original_id
    _store_secrets(app, {"secret_encrypted": secret, "token_encrypted": token,
                         "aes_key_encrypted": aes_key})
    _save(app, _("公众号 %(appid)s 已接入。") % {"appid": appid})
    audit_record(actor=actor, action="integrations.oa_connect" if creating else
                 "integrations.oa_update", target=app, data={"appid": appid})
    if check:
        connection_check(connection=app)
    return app


@transaction.atomic
def wecom_corp_connect(*, actor: Actor, corpid: str, secret: str | None = None,
                       name: str = "", token: str | None = None, aes_key: str | None = None,
                       agent_id: str | None = None, agent_secret: str | None = None,
                       check: bool = True) -> WeComCorp:
    corp = WeComCorp.objects.filter(corpid=corpid).first()
    creating = corp is None
    if creating and not secret:
        raise ApplicationError(_("请填写客户联系 Secret。"), code="secret_required",
                               fields={"secret": [_("必填")]})
    corp = corp or WeComCorp(tenant_id=actor.tenant.pk, corpid=corpid)
    current_token = crypto.decrypt(corp.token_encrypted) if corp.token_encrypted else ""
    current_key = crypto.decrypt(corp.aes_key_encrypted) if corp.aes_key_encrypted else ""
    _validate(token=current_token if token is None else token,
              aes_key=current_key if aes_key is None else aes_key)
    corp.name = name or corp.name or corpid
    if agent_id is not None:
        corp.agent_id = agent_id
    _store_secrets(corp, {"contact_secret_encrypted": secret, "token_encrypted": token,
                          "aes_key_encrypted": aes_key, "agent_secret_encrypted": agent_secret})
    _save(corp, _("企业微信 %(corpid)s 已接入。") % {"corpid": corpid})
    audit_record(actor=actor, action="integrations.wecom_connect" if creating else
                 "integrations.wecom_update", target=corp, data={"corpid": corpid})
    if check:
        connection_check(connection=corp)
    return corp


# Using a connection


def secret_of(connection, field: str) -> str:
    value = getattr(connection, field)
    return crypto.decrypt(value) if value else ""


def oa_api(app: OAApp) -> OAApi:
    return OAApi(appid=app.appid, secret=secret_of(app, "secret_encrypted"))


def wecom_api(corp: WeComCorp) -> WeComApi:
    return WeComApi(corpid=corp.corpid, secret=secret_of(corp, "contact_secret_encrypted"))


def wecom_agent_api(corp: WeComCorp) -> WeComApi:
    """The self-built app's client (OAuth for guides); the contact secret when none."""
    secret = secret_of(corp, "agent_secret_encrypted") or secret_of(
        corp, "contact_secret_encrypted")
    return WeComApi(corpid=corp.corpid, secret=secret)


def callback_url(connection) -> str:
    if isinstance(connection, OAApp):
        path = reverse("wechat-oa-callback", args=[connection.appid])
    else:
        path = reverse("wechat-wecom-callback", args=[connection.corpid])
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def _problems(connection) -> list[str]:
    problems = []
    if not connection.token_encrypted:
        problems.append(_("未填写 Token：无法接收回调事件（关注、扫码、客户变更）。"))
    if not connection.aes_key_encrypted:
        if isinstance(connection, WeComCorp):
            problems.append(_("未填写 EncodingAESKey：企业微信回调必须加密，无法接收回调事件。"))
        elif connection.message_mode != OAApp.MessageMode.PLAIN:
            problems.append(_("未填写 EncodingAESKey：请在公众号后台设置并填入。"))
    else:
        problem = aes_key_problem(secret_of(connection, "aes_key_encrypted"))
        if problem:
            problems.append(problem)
    return problems


def _credential_problem(exc: WeChatApiError) -> str:
    known = CREDENTIAL_PROBLEMS.get(exc.errcode or 0)
    if known:
        return str(known)
    if exc.errcode is None:
        return _("无法连接微信服务器：%(error)s") % {"error": exc.errmsg}
    return _("微信返回错误 %(code)s：%(message)s") % {"code": exc.errcode, "message": exc.errmsg}


def connection_check(*, connection) -> dict[str, Any]:
    """Validate the credentials against the platform (a token, then one harmless call) and
    the callback settings; record and return what is wrong, in plain words."""
    problems = _problems(connection)
    try:
        if isinstance(connection, OAApp):
            api = oa_api(connection)
            api.token_check()
            api.tags()
        else:
            api = wecom_api(connection)
            api.token_check()
            api.follow_users()
    except WeChatApiError as exc:
        problems.insert(0, _credential_problem(exc))
    ok = not problems
    type(connection).objects.filter(pk=connection.pk).update(
        check_status=CheckStatus.OK if ok else CheckStatus.FAILED,
        check_message="\n".join(problems), checked_at=timezone.now())
    return {"ok": ok, "problems": problems, "callback_url": callback_url(connection)}
