"""MP web authorisation (网页授权, WECHAT.md §3.5 and §4.5): the consent page on
open.weixin.qq.com and the ``sns/*`` token endpoints.  A corpid as ``appid`` is WeCom member
login, handled by ``work_oauth``.

The browser user is chosen by the ``fake_openid`` or ``fake_person`` query parameter, the
``fake_wechat_person`` cookie, the app's (or the sandbox's) default browser person, or else
an HTML picker.  Codes are single-use and live 300 s on the sandbox clock.
"""

from __future__ import annotations

from html import escape
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from .errors import ApiError
from .persons import person_label, person_ref
from .wire import html, redirect, require, route

CODE_TTL_S = 300
SNS_TOKEN_TTL_S = 7200
REFRESH_TTL_S = 30 * 86400
SCOPES = ("snsapi_base", "snsapi_userinfo")
PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:2em auto;padding:0 1em}}
a.btn{{display:block;margin:.6em 0;padding:.8em;border-radius:6px;text-align:center;
text-decoration:none;background:#07c160;color:#fff}}a.deny{{background:#eee;color:#333}}
li{{margin:.3em 0}}</style></head><body><h3>{title}</h3>{content}
<p><small>WeChat sandbox · 模拟网页授权</small></p></body></html>"""


def _error_page(message: str):
    return html(PAGE.format(title="错误", content=f"<p>{escape(message)}</p>"))


def _browser_person(sandbox, app, req) -> int | None:
    if req.query.get("fake_openid"):
        return app.person_of(sandbox, req.query["fake_openid"])
    candidates = [req.query.get("fake_person")]
    cookie = SimpleCookie(req.headers.get("cookie", ""))
    if "fake_wechat_person" in cookie:
        candidates.append(cookie["fake_wechat_person"].value)
    candidates += [app.browser_person, sandbox.default_browser_person]
    for candidate in candidates:
        if candidate in (None, ""):
            continue
        try:
            index = person_ref(candidate)
        except ValueError:
            continue
        if sandbox.persons.exists(index):
            return index
    return None


def _self_link(req, **extra) -> str:
    query = {k: v for k, v in req.query.items() if not k.startswith("fake_")}
    return "authorize?" + urlencode({**query, **extra})


def _picker(sandbox, app, req):
    persons = app.followers.page_after(-1, 12)
    items = "".join(
        f'<li><a href="{escape(_self_link(req, fake_person=person_label(p)))}">'
        f"{escape(sandbox.persons.get(p).nickname)} ({person_label(p)})</a></li>"
        for p in persons
    )
    new = escape(_self_link(req, fake_person="new"))
    content = (f"<p>选择一个微信用户登录 {escape(app.appid)}:</p><ul>{items}</ul>"
               f'<p><a href="{new}">一个新用户 (never followed)</a></p>')
    return html(PAGE.format(title="模拟微信用户", content=content))


def _consent(sandbox, app, req, person: int):
    nickname = escape(sandbox.persons.get(person).nickname)
    allow = escape(_self_link(req, fake_person=person_label(person), fake_consent="allow"))
    deny = escape(_self_link(req, fake_person=person_label(person), fake_consent="deny"))
    content = (f"<p>{escape(app.appid)} 申请获得你的公开信息（昵称、头像）</p>"
               f"<p>当前用户: {nickname}</p>"
               f'<a class="btn" href="{allow}">允许</a><a class="btn deny" href="{deny}">拒绝</a>')
    return html(PAGE.format(title="授权", content=content))


def _landing(redirect_uri: str, params: dict) -> str:
    separator = "&" if "?" in redirect_uri else "?"
    return redirect_uri + separator + urlencode(params)


@route("open", "/connect/oauth2/authorize", auth=False)
def authorize(sandbox, req):
    corp = sandbox.corps.get(req.query.get("appid", ""))
    if corp is not None:  # a corpid: WeCom member login (work_oauth)
        from .work_oauth import authorize as member_authorize

        return member_authorize(sandbox, corp, req)
    app = sandbox.mp_apps.get(req.query.get("appid", ""))
    if app is None:
        return _error_page("appid 参数错误")
    redirect_uri = req.query.get("redirect_uri", "")
    if urlsplit(redirect_uri).netloc not in app.oauth_domains:
        return _error_page("redirect_uri 参数错误")
    scope = req.query.get("scope", "")
    if scope not in SCOPES or req.query.get("response_type") != "code":
        return _error_page("scope 参数错误或没有 scope 权限")
    if req.query.get("fake_person") == "new":
        person = sandbox.persons.create().index
    else:
        person = _browser_person(sandbox, app, req)
    if person is None:
        return _picker(sandbox, app, req)
    cookie = [("Set-Cookie", f"fake_wechat_person={person_label(person)}; Path=/")]
    state = req.query.get("state", "")
    consent = req.query.get("fake_consent")
    if scope == "snsapi_userinfo" and consent != "allow" and not app.auto_consent:
        if consent == "deny":
            return redirect(_landing(redirect_uri, {"state": state}), cookie)
        return _consent(sandbox, app, req, person)
    code = sandbox.rng_ids.chars(32)
    sandbox.oauth_codes[code] = {"appid": app.appid, "person": person, "scope": scope,
                                 "issued_at": sandbox.clock.now(), "used": False}
    return redirect(_landing(redirect_uri, {"code": code, "state": state}), cookie)


def _sns_grant(sandbox, app, person: int, scope: str, refresh_token: str) -> dict:
    now = sandbox.clock.now()
    access_token = sandbox.rng_ids.chars(110)
    sandbox.sns_tokens[access_token] = {"appid": app.appid, "person": person, "scope": scope,
                                        "expires_at": now + SNS_TOKEN_TTL_S}
    return {"access_token": access_token, "expires_in": SNS_TOKEN_TTL_S,
            "refresh_token": refresh_token, "openid": app.followers.openid(person),
            "scope": scope}


@route("mp", "/sns/oauth2/access_token", auth=False, quota="sns/oauth2/access_token")
def sns_access_token(sandbox, req):
    app = sandbox.mp_apps.get(req.query.get("appid", ""))
    require(app is not None, 40013)
    require(req.query.get("secret") == app.secret, 40125)
    code = req.query.get("code")
    require(bool(code), 41008)
    grant = sandbox.oauth_codes.get(code)
    fresh = grant is not None and sandbox.clock.now() - grant["issued_at"] < CODE_TTL_S
    require(fresh and grant["appid"] == app.appid, 40029)
    require(not grant["used"], 40163)
    grant["used"] = True
    person, scope = grant["person"], grant["scope"]
    app.followers.remember(person)
    refresh_token = sandbox.rng_ids.chars(110)
    sandbox.sns_refresh_tokens[refresh_token] = {
        "appid": app.appid, "person": person, "scope": scope,
        "expires_at": sandbox.clock.now() + REFRESH_TTL_S}
    payload = _sns_grant(sandbox, app, person, scope, refresh_token)
    if sandbox.persons.get(person).is_snapshotuser:
        payload["is_snapshotuser"] = 1
    unionid = sandbox.persons.unionid(person) if app.open_platform_bound else None
    if unionid:
        payload["unionid"] = unionid
    return payload


@route("mp", "/sns/oauth2/refresh_token", auth=False)
def sns_refresh_token(sandbox, req):
    app = sandbox.mp_apps.get(req.query.get("appid", ""))
    require(app is not None, 40013)
    require(req.query.get("grant_type") == "refresh_token", 40002)
    value = req.query.get("refresh_token", "")
    grant = sandbox.sns_refresh_tokens.get(value)
    require(grant is not None and grant["appid"] == app.appid, 40030)
    require(sandbox.clock.now() < grant["expires_at"], 42002)
    return _sns_grant(sandbox, app, grant["person"], grant["scope"], value)


def _sns_token(sandbox, req) -> dict:
    grant = sandbox.sns_tokens.get(req.query.get("access_token", ""))
    require(grant is not None, 40001)
    require(sandbox.clock.now() < grant["expires_at"], 42001)
    app = sandbox.mp_apps[grant["appid"]]
    openid = req.query.get("openid")
    if openid and app.person_of(sandbox, openid) != grant["person"]:
        raise ApiError(40003)
    return grant


@route("mp", "/sns/userinfo", auth=False)
def sns_userinfo(sandbox, req):
    grant = _sns_token(sandbox, req)
    require(grant["scope"] == "snsapi_userinfo", 48001)
    app = sandbox.mp_apps[grant["appid"]]
    person = sandbox.persons.get(grant["person"])
    payload = {"openid": app.followers.openid(person.index), "nickname": person.nickname,
               "sex": person.sex, "province": person.province, "city": person.city,
               "country": person.country, "headimgurl": person.headimgurl, "privilege": []}
    if app.open_platform_bound and person.has_unionid:
        payload["unionid"] = person.unionid
    return payload


@route("mp", "/sns/auth", auth=False, write=True)
def sns_auth(sandbox, req):
    _sns_token(sandbox, req)
    return {}
