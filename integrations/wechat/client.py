"""The one module that calls wechatpy (2.0.0a26).  Everything else talks to WeChat and WeCom
through ``OAApi`` and ``WeComApi`` here, which return plain dicts and raise ``WeChatApiError``.

- Every call goes through ``_call``: on a token error (40001, 40014, 42001) the token is
  dropped, if no other worker replaced it meanwhile, fetched once under a lock and the call
  retried once; wechatpy's own uncapped retry is off.
- Tokens live in the Django cache (Redis in production), shared by every worker.  MP tokens
  come from ``stable_token``, which does not invalidate the tokens other workers hold.
- ``WECHAT_API_BASE_URL`` / ``WECOM_API_BASE_URL`` point every call at the sandbox or a proxy
  through a transport adapter on the client's own session, which also catches the URLs
  wechatpy hard-codes (token endpoints, per-API base URLs).
- Calls are rate-limited per account (``WECHAT_RATE_LIMIT``), waiting for the window rather
  than failing.
"""

import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache as django_cache
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth
from wechatpy.session import SessionStorage
from wechatpy.work import WeChatClient as WorkClient

logger = logging.getLogger(__name__)

TIMEOUT = (3.05, 10)
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
BUSY = frozenset({-1, 45011, 45033})
MP_HOSTS = ("api.weixin.qq.com", "open.weixin.qq.com", "mp.weixin.qq.com")
WECOM_HOSTS = ("qyapi.weixin.qq.com",)
LOCK_SECONDS = 10


class WeChatApiError(Exception):
    """A call WeChat or WeCom refused, or that did not get an answer."""

    def __init__(self, errcode: int | None, errmsg: str, *, platform: str,
                 http_status: int | None = None) -> None:
        super().__init__(f"{errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode, self.errmsg, self.platform = errcode, errmsg, platform
        self.http_status = http_status

    @property
    def is_retryable(self) -> bool:
        """Busy, rate-limited, or no (or a 5xx) answer: worth trying again after a while."""
        if self.errcode in BUSY:
            return True
        if self.errcode == 45009 and self.platform == "wecom":  # per-minute limit there
            return True
        return self.errcode is None and (self.http_status is None or self.http_status >= 500)

    @property
    def is_quota_exhausted(self) -> bool:
        """The OA's daily quota: nothing helps before tomorrow (or ``clear_quota``)."""
        return self.errcode == 45009 and self.platform == "oa"


# Tokens, shared by every worker


class CacheSession(SessionStorage):
    """wechatpy's token storage on the Django cache."""

    prefix = "wechat:"

    def get(self, key, default=None):
        value = django_cache.get(self.prefix + key)
        return default if value is None else value

    def set(self, key, value, ttl=None):
        django_cache.set(self.prefix + key, value, timeout=ttl)

    def delete(self, key):
        django_cache.delete(self.prefix + key)


@contextmanager
def _token_lock(key: str):
    """One refresh at a time per token, across workers (Redis lock when the cache is Redis,
    a cache-add spin otherwise)."""
    lock = getattr(django_cache, "lock", None)
    if lock is not None:
        with lock(f"wechat:lock:{key}", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS):
            yield
        return
    name, deadline = f"wechat:lock:{key}", time.monotonic() + LOCK_SECONDS
    while not django_cache.add(name, 1, timeout=LOCK_SECONDS) and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        django_cache.delete(name)


class _SharedToken:
    """Fetch the token under a lock, unless another worker already did."""

    def fetch_access_token(self):
        with _token_lock(self.access_token_key):
            token = self.session.get(self.access_token_key)
            expires_at = self.session.get(self.access_token_expires_at_key)
            if token and expires_at and expires_at - time.time() > 60:
                return {"access_token": token, "expires_in": int(expires_at - time.time())}
            return self._fetch_fresh(force=False)

    def token_invalidate(self, failed: str) -> None:
        """WeChat refused ``failed``: drop it, unless it has been replaced meanwhile."""
        with _token_lock(self.access_token_key):
            if self.session.get(self.access_token_key) != failed:
                return
            self.session.delete(self.access_token_key)
            self.session.delete(self.access_token_expires_at_key)
            result = self._fetch_fresh(force=False)
            if result.get("access_token") == failed:  # still the refused one: insist
                self._fetch_fresh(force=True)


class _OAClient(_SharedToken, WeChatClient):
    def _fetch_fresh(self, *, force: bool) -> dict:
        response = self._http.post(
            "https://api.weixin.qq.com/cgi-bin/stable_token", timeout=self.timeout,
            data=json.dumps({"grant_type": "client_credential", "appid": self.appid,
                             "secret": self.secret, "force_refresh": force}))
        return self._store_token(response)

    def _store_token(self, response) -> dict:
        result = self._handle_result(response)
        if not isinstance(result, dict) or "access_token" not in result:
            raise WeChatClientException(None, f"HTTP {response.status_code}: no token",
                                        client=self, response=response)
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.session.set(self.access_token_expires_at_key, int(time.time()) + expires_in)
        return result


class _WeComClient(_SharedToken, WorkClient):
    def _fetch_fresh(self, *, force: bool) -> dict:
        return WorkClient.fetch_access_token(self)


# Pointing at the sandbox or a proxy


class RewritingAdapter(HTTPAdapter):
    """Sends https://<host>/<path> to <base>/<path>, naming the host in X-Original-Host (the
    sandbox serves every host on one port)."""

    def __init__(self, base_url: str, **kwargs) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        parts = urllib.parse.urlsplit(request.url)
        request.headers["X-Original-Host"] = parts.netloc
        request.url = f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def _mount(http: requests.Session, base_url: str, hosts: tuple[str, ...]) -> None:
    if base_url:
        for host in hosts:
            http.mount(f"https://{host}/", RewritingAdapter(base_url))


def oauth_base_url() -> str:
    """Where browsers are sent to authorise (open.weixin.qq.com, or the sandbox's page)."""
    base = settings.WECHAT_API_BASE_URL.rstrip("/")
    return f"{base}/open.weixin.qq.com" if base else "https://open.weixin.qq.com"


# Rate limits, per account


@cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(settings.WECHAT_RATE_LIMIT_STORAGE))


def _throttle(account: str) -> None:
    limit = parse_limit(settings.WECHAT_RATE_LIMIT)
    while not _limiter().hit(limit, "wechat", account):
        reset_at, _remaining = _limiter().get_window_stats(limit, "wechat", account)
        time.sleep(min(max(reset_at - time.time(), 0.01), 1.0))


def _call(client, platform: str, fn: Callable[[], Any]) -> Any:
    """Run one API call with one token refresh at most."""
    for attempt in (1, 2):
        _throttle(getattr(client, "appid", None) or client.corp_id)
        token = None
        try:
            token = client.access_token
            return fn()
        except WeChatClientException as exc:
            if exc.errcode in TOKEN_ERRORS and attempt == 1 and token is not None:
                logger.info("%s token refused (%s); refreshing once", platform, exc.errcode)
                client.token_invalidate(token)
                continue
            status = exc.response.status_code if exc.response is not None else None
            raise WeChatApiError(exc.errcode, str(exc.errmsg or ""), platform=platform,
                                 http_status=status) from exc
        except requests.RequestException as exc:
            raise WeChatApiError(None, f"{type(exc).__name__}: {exc}", platform=platform) from exc
    raise AssertionError("unreachable")


# The Official Account


class OAApi:
    def __init__(self, *, appid: str, secret: str) -> None:
        self.appid = appid
        self.client = _OAClient(appid, secret, session=CacheSession(), timeout=TIMEOUT,
                                auto_retry=False)
        _mount(self.client._http, settings.WECHAT_API_BASE_URL, MP_HOSTS)

    def _get(self, endpoint: str, **params) -> dict:
        # A fresh params dict per attempt: wechatpy writes the token into it.
        return _call(self.client, "oa", lambda: self.client.get(endpoint, params=dict(params)))

    def _post(self, endpoint: str, data: dict) -> dict:
        return _call(self.client, "oa", lambda: self.client.post(endpoint, data=data))

    def token_check(self) -> None:
        _call(self.client, "oa", lambda: self.client.access_token)

    def followers_page(self, next_openid: str = "") -> dict:
        """{"total", "count", "data"?: {"openid": [...]}, "next_openid"}: up to 10,000."""
        return self._get("user/get", next_openid=next_openid)

    def users_info(self, openids: list[str]) -> list[dict]:
        if not 0 < len(openids) <= 100:
            raise ValueError("user/info/batchget takes 1 to 100 openids")
        body = {"user_list": [{"openid": openid, "lang": "zh_CN"} for openid in openids]}
        return self._post("user/info/batchget", body).get("user_info_list", [])

    def tags(self) -> list[dict]:
        return self._get("tags/get").get("tags", [])

    def tag_create(self, name: str) -> dict:
        return self._post("tags/create", {"tag": {"name": name}})["tag"]

    def tag_update(self, tag_id: int, name: str) -> None:
        self._post("tags/update", {"tag": {"id": tag_id, "name": name}})

    def tag_delete(self, tag_id: int) -> None:
        self._post("tags/delete", {"tag": {"id": tag_id}})

    def tag_members(self, tag_id: int, openids: list[str], *, add: bool = True) -> None:
        if not 0 < len(openids) <= 50:
            raise ValueError("batch (un)tagging takes 1 to 50 openids")
        endpoint = "tags/members/batchtagging" if add else "tags/members/batchuntagging"
        self._post(endpoint, {"openid_list": openids, "tagid": tag_id})

    def qrcode_create(self, *, scene: str, expire_seconds: int | None) -> dict:
        """A QR code carrying ``scene`` (permanent when ``expire_seconds`` is None)."""
        body: dict[str, Any] = {"action_info": {"scene": {"scene_str": scene}}}
        if expire_seconds is None:
            body["action_name"] = "QR_LIMIT_STR_SCENE"
        else:
            body.update(action_name="QR_STR_SCENE", expire_seconds=expire_seconds)
        return self._post("qrcode/create", body)

    def template_send(self, *, openid: str, template_id: str, data: dict, url: str = "",
                      client_msg_id: str) -> int:
        body = {"touser": openid, "template_id": template_id, "client_msg_id": client_msg_id,
                "data": {key: {"value": str(value)} for key, value in data.items()}}
        if url:
            body["url"] = url
        return int(self._post("message/template/send", body)["msgid"])

    def templates(self) -> list[dict]:
        return self._get("template/get_all_private_template").get("template_list", [])

    # OAuth for H5 pages

    def _oauth(self, redirect_uri: str = "", scope: str = "snsapi_base",
               state: str = "") -> WeChatOAuth:
        oauth = WeChatOAuth(self.appid, self.client.secret, redirect_uri, scope, state)
        _mount(oauth._http, settings.WECHAT_API_BASE_URL, MP_HOSTS)
        return oauth

    def oauth_url(self, *, redirect_uri: str, scope: str, state: str) -> str:
        query = urllib.parse.urlencode({"appid": self.appid, "redirect_uri": redirect_uri,
                                        "response_type": "code", "scope": scope,
                                        "state": state})
        return f"{oauth_base_url()}/connect/oauth2/authorize?{query}#wechat_redirect"

    def oauth_exchange(self, code: str, *, with_profile: bool) -> dict:
        """{"openid", "unionid"?, "scope"} and, with ``snsapi_userinfo``, the profile."""
        oauth = self._oauth()
        try:
            result = oauth.fetch_access_token(code)
            if with_profile and "snsapi_userinfo" in result.get("scope", ""):
                result["profile"] = oauth.get_user_info()
        except WeChatOAuthException as exc:
            raise WeChatApiError(exc.errcode, str(exc.errmsg), platform="oa") from exc
        except requests.RequestException as exc:
            raise WeChatApiError(None, str(exc), platform="oa") from exc
        return result


# WeCom


class WeComApi:
    def __init__(self, *, corpid: str, secret: str) -> None:
        self.corpid = corpid
        self.client = _WeComClient(corpid, secret, session=CacheSession(), timeout=TIMEOUT,
                                   auto_retry=False)
        _mount(self.client._http, settings.WECOM_API_BASE_URL, WECOM_HOSTS)

    def _get(self, endpoint: str, **params) -> dict:
        return _call(self.client, "wecom",
                     lambda: self.client.get(endpoint, params=dict(params)))

    def _post(self, endpoint: str, data: dict) -> dict:
        return _call(self.client, "wecom", lambda: self.client.post(endpoint, data=data))

    def token_check(self) -> None:
        _call(self.client, "wecom", lambda: self.client.access_token)

    def follow_users(self) -> list[str]:
        return self._get("externalcontact/get_follow_user_list").get("follow_user", [])

    def user(self, userid: str) -> dict:
        return self._get("user/get", userid=userid)

    def contacts_by_users(self, userids: list[str], cursor: str = "") -> dict:
        """{"external_contact_list": [{"external_contact", "follow_info"}], "next_cursor"}."""
        return self._post("externalcontact/batch/get_by_user",
                          {"userid_list": userids[:100], "cursor": cursor, "limit": 100})

    def contact(self, external_userid: str) -> dict:
        """The customer with every follow_user (paged by 500 on WeCom's side)."""
        result = self._get("externalcontact/get", external_userid=external_userid)
        follows, cursor = list(result.get("follow_user", [])), result.get("next_cursor", "")
        while cursor:
            page = self._get("externalcontact/get", external_userid=external_userid,
                             cursor=cursor)
            follows += page.get("follow_user", [])
            cursor = page.get("next_cursor", "")
        result["follow_user"] = follows
        return result

    def group_chats(self, cursor: str = "", limit: int = 1000) -> dict:
        return self._post("externalcontact/groupchat/list",
                          {"status_filter": 0, "cursor": cursor, "limit": limit})

    def group_chat(self, chat_id: str) -> dict:
        return self._post("externalcontact/groupchat/get",
                          {"chat_id": chat_id, "need_name": 1})["group_chat"]

    def corp_tags(self) -> list[dict]:
        return self._post("externalcontact/get_corp_tag_list", {}).get("tag_group", [])

    def corp_tag_add(self, *, group_name: str, names: list[str]) -> dict:
        return self._post("externalcontact/add_corp_tag", {
            "group_name": group_name, "tag": [{"name": name} for name in names]})["tag_group"]

    def corp_tag_edit(self, tag_id: str, name: str) -> None:
        self._post("externalcontact/edit_corp_tag", {"id": tag_id, "name": name})

    def corp_tag_delete(self, tag_ids: list[str]) -> None:
        self._post("externalcontact/del_corp_tag", {"tag_id": tag_ids})

    def mark_tag(self, *, userid: str, external_userid: str, add: list[str] = (),
                 remove: list[str] = ()) -> None:
        self._post("externalcontact/mark_tag", {"userid": userid,
                                                "external_userid": external_userid,
                                                "add_tag": list(add), "remove_tag": list(remove)})

    def contact_way_add(self, *, userids: list[str], state: str, remark: str = "") -> dict:
        return self._post("externalcontact/add_contact_way", {
            "type": 1 if len(userids) == 1 else 2, "scene": 2, "state": state[:30],
            "remark": remark[:30], "skip_verify": True, "user": userids})

    def contact_way_update(self, *, config_id: str, userids: list[str], state: str) -> None:
        self._post("externalcontact/update_contact_way", {
            "config_id": config_id, "state": state[:30], "skip_verify": True, "user": userids})

    def contact_way_delete(self, config_id: str) -> None:
        self._post("externalcontact/del_contact_way", {"config_id": config_id})

    def welcome_send(self, *, welcome_code: str, text: str) -> None:
        self._post("externalcontact/send_welcome_msg",
                   {"welcome_code": welcome_code, "text": {"content": text}})

    def msg_template_add(self, *, sender: str, external_userids: list[str], text: str,
                         attachments: list[dict] = ()) -> dict:
        return self._post("externalcontact/add_msg_template", {
            "chat_type": "single", "sender": sender, "external_userid": external_userids,
            "text": {"content": text}, "attachments": list(attachments)})

    def msg_send_results(self, *, msgid: str, userid: str, cursor: str = "") -> dict:
        return self._post("externalcontact/get_groupmsg_send_result",
                          {"msgid": msgid, "userid": userid, "limit": 1000, "cursor": cursor})

    def transfer(self, *, handover: str, takeover: str, external_userids: list[str],
                 resigned: bool) -> list[dict]:
        endpoint = ("externalcontact/resigned/transfer_customer" if resigned
                    else "externalcontact/transfer_customer")
        return self._post(endpoint, {"handover_userid": handover, "takeover_userid": takeover,
                                     "external_userid": external_userids[:100]})["customer"]

    def oauth_user(self, code: str) -> dict:
        """The corp member a WeCom OAuth code stands for: {"userid"} (or "openid" for
        outsiders)."""
        return self._get("auth/getuserinfo", code=code)


# Callbacks: signatures, decryption, parsing, passive replies


class CallbackRejected(Exception):  # noqa: N818 - a refusal, answered with a 4xx
    """A callback that is forged, malformed or not for us."""


def oa_callback_verify(*, token: str, signature: str, timestamp: str, nonce: str) -> None:
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException as exc:
        raise CallbackRejected("bad signature") from exc


def oa_callback_message(*, body: bytes, token: str, aes_key: str, appid: str,
                        encrypted: bool, msg_signature: str, timestamp: str,
                        nonce: str) -> dict:
    """The event or message an OA callback carries, as WeChat's field names → values."""
    from wechatpy import parse_message

    xml = body.decode("utf-8")
    if encrypted:
        xml = _decrypt(lambda: _oa_crypto(token, aes_key, appid).decrypt_message(
            xml, msg_signature, timestamp, nonce))
    return _parsed(parse_message, xml)


def oa_reply_text(*, to_openid: str, from_original_id: str, text: str, token: str,
                  aes_key: str, appid: str, encrypted: bool, nonce: str,
                  timestamp: str) -> str:
    """A passive text reply to an OA event (the welcome message of a channel QR code)."""
    from wechatpy.replies import TextReply

    reply = TextReply(target=to_openid, source=from_original_id, content=text).render()
    if encrypted:
        return _oa_crypto(token, aes_key, appid).encrypt_message(reply, nonce, timestamp)
    return reply


def wecom_callback_echo(*, token: str, aes_key: str, corpid: str, msg_signature: str,
                        timestamp: str, nonce: str, echostr: str) -> str:
    """The plaintext WeCom's URL verification expects back."""
    from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

    return _decrypt(lambda: WorkCrypto(token, aes_key, corpid).check_signature(
        msg_signature, timestamp, nonce, echostr))


def wecom_callback_message(*, body: bytes, token: str, aes_key: str, corpid: str,
                           msg_signature: str, timestamp: str, nonce: str) -> dict:
    from wechatpy.work import parse_message
    from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

    xml = _decrypt(lambda: WorkCrypto(token, aes_key, corpid).decrypt_message(
        body.decode("utf-8"), msg_signature, timestamp, nonce))
    return _parsed(parse_message, xml)


def _oa_crypto(token: str, aes_key: str, appid: str):
    from wechatpy.crypto import WeChatCrypto

    return WeChatCrypto(token, aes_key, appid)


def _decrypt(run: Callable[[], str]) -> str:
    from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

    try:
        return run()
    except (InvalidSignatureException, InvalidAppIdException) as exc:
        raise CallbackRejected(type(exc).__name__) from exc
    except Exception as exc:  # malformed XML, bad base64, bad padding: wechatpy raises anything
        raise CallbackRejected(f"undecryptable: {type(exc).__name__}") from exc


def _parsed(parse, xml: str) -> dict:
    try:
        message = parse(xml)
    except Exception as exc:  # xmltodict's ExpatError and friends
        raise CallbackRejected(f"malformed XML: {type(exc).__name__}") from exc
    data = dict(getattr(message, "_data", {}) or {})
    if not data.get("MsgType"):
        raise CallbackRejected("no MsgType")
    return data
