"""WeCom web authorisation for corp members (构造网页授权链接 and 获取访问用户身份): a
shopping guide opens an H5 page inside WeCom and the app learns the guide's userid.

1. The browser step shares ``open.weixin.qq.com/connect/oauth2/authorize`` with MP OAuth;
   ``oauth.authorize`` hands a request over here when ``appid`` is a corpid.  The member is
   chosen by the ``fake_userid`` query parameter, the ``fake_wecom_member`` cookie, the
   corp's default (``set_browser_member``), or else an HTML picker of the active members.
2. The API step is ``GET qyapi.weixin.qq.com/cgi-bin/auth/getuserinfo?access_token&code``
   (and the deprecated ``cgi-bin/user/getuserinfo``, which answers the same).

A code is single-use, lives 300 s on the sandbox clock and is bound to (corpid, the agent
app named by ``agentid``, userid).  Every failure of a code answers 40029: WeCom has no
40163.  ``user_ticket`` comes only with scope ``snsapi_privateinfo`` and a member inside the
app's visible range, as the WeCom docs say; ``snsapi_base`` answers the userid alone.
"""

from __future__ import annotations

from html import escape
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from .oauth import PAGE, _error_page, _landing, _self_link
from .wire import html, redirect, require, route
from .work_state import Corp, Member

CODE_TTL_S = 300
SCOPES = ("snsapi_base", "snsapi_privateinfo")
COOKIE = "fake_wecom_member"


def _active(corp: Corp, userid: object) -> Member | None:
    member = corp.members.get(userid) if isinstance(userid, str) else None
    return member if member is not None and member.active else None


def _browser_member(corp: Corp, req) -> Member | None:
    """The cookie, then the control API's default; a stale choice is skipped."""
    cookie = SimpleCookie(req.headers.get("cookie", ""))
    remembered = cookie[COOKIE].value if COOKIE in cookie else None
    for userid in (remembered, corp.browser_member):
        member = _active(corp, userid)
        if member is not None:
            return member
    return None


def _picker(corp: Corp, req, agent):
    items = "".join(
        f'<li><a href="{escape(_self_link(req, fake_userid=m.userid))}">'
        f"{escape(m.name)} ({escape(m.userid)})</a></li>"
        for m in corp.members.values() if m.active
    )
    target = f"{escape(corp.corpid)}" + (f" · 应用 {agent.agentid}" if agent else "")
    content = f"<p>选择一个企业成员登录 {target}:</p><ul>{items}</ul>"
    return html(PAGE.format(title="模拟企业微信成员", content=content))


def _check(corp: Corp, req):
    """(agent app or None, None) for a valid request, or (None, error page)."""
    agent = None
    if req.query.get("agentid"):
        agent = corp.app_for_agentid(req.query["agentid"])
        if agent is None:
            return None, _error_page("agentid 参数错误：应用不存在")
    if urlsplit(req.query.get("redirect_uri", "")).netloc not in corp.oauth_domains:
        return None, _error_page("redirect_uri 参数错误：需使用应用可信域名")
    scope = req.query.get("scope", "")
    if scope not in SCOPES or req.query.get("response_type") != "code":
        return None, _error_page("scope 参数错误或没有 scope 权限")
    if scope == "snsapi_privateinfo" and agent is None:
        return None, _error_page("snsapi_privateinfo 需要 agentid 参数")
    return agent, None


def authorize(sandbox, corp: Corp, req):
    agent, error = _check(corp, req)
    if error is not None:
        return error
    if req.query.get("fake_userid"):
        member = _active(corp, req.query["fake_userid"])
        if member is None:
            return _error_page(f"成员 {req.query['fake_userid']} 不存在或已离职")
    else:
        member = _browser_member(corp, req)
    if member is None:
        return _picker(corp, req, agent)
    now = sandbox.clock.now()
    for stale in [c for c, g in corp.oauth_codes.items() if now - g["issued_at"] >= CODE_TTL_S]:
        del corp.oauth_codes[stale]
    code = sandbox.rng_ids.chars(43)
    corp.oauth_codes[code] = {"userid": member.userid, "app": agent.name if agent else None,
                              "scope": req.query["scope"], "issued_at": now}
    cookie = [("Set-Cookie", f"{COOKIE}={member.userid}; Path=/")]
    params = {"code": code, "state": req.query.get("state", "")}
    return redirect(_landing(req.query["redirect_uri"], params), cookie)


@route("work", "/cgi-bin/auth/getuserinfo")
def getuserinfo(sandbox, req):
    corp, app = req.app
    code = req.query.get("code")
    require(bool(code), 41008)
    grant = corp.oauth_codes.get(code)  # a code of another corp is simply not here
    fresh = grant is not None and sandbox.clock.now() - grant["issued_at"] < CODE_TTL_S
    require(fresh and grant["app"] in (None, app.name), 40029)
    del corp.oauth_codes[code]  # single use: a second exchange is an unknown code, 40029
    userid = grant["userid"]
    payload = {("UserId" if corp.legacy_oauth_keys else "userid"): userid}
    if grant["scope"] == "snsapi_privateinfo" and corp.visible(app, userid):
        payload["user_ticket"] = sandbox.rng_ids.chars(86)
    return payload


route("work", "/cgi-bin/user/getuserinfo")(getuserinfo)  # the deprecated path, same answer
