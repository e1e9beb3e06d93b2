"""Web authorisation: the consent page on open.weixin.qq.com and wechatpy's WeChatOAuth."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wechatpy.exceptions import WeChatOAuthException

REDIRECT = "http://testserver/wechat/oauth/done/"


def authorize(sandbox, oauth, **params):
    """Follow the authorize URL like a browser would (without following the redirect)."""
    return sandbox.session().get(oauth.authorize_url, params=params, allow_redirects=False)


def landing(response) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_full_userinfo_flow_with_wechatpy(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT, scope="snsapi_userinfo", state="s1")

    consent = authorize(sandbox, oauth, fake_person="p3")
    allowed = authorize(sandbox, oauth, fake_person="p3", fake_consent="allow")
    params = landing(allowed)
    token = oauth.fetch_access_token(params["code"])
    profile = oauth.get_user_info()
    person = sandbox.persons.get(3)

    assert consent.status_code == 200
    assert "允许" in consent.text
    assert person.nickname in consent.text
    assert params["state"] == "s1"
    assert len(params["code"]) == 32
    assert (token["openid"], token["scope"], token["expires_in"]) == (
        sandbox.openid(3), "snsapi_userinfo", 7200)
    assert token["unionid"] == person.unionid
    assert profile == {"openid": sandbox.openid(3), "nickname": person.nickname,
                       "sex": person.sex, "province": person.province, "city": person.city,
                       "country": "中国", "headimgurl": person.headimgurl, "privilege": [],
                       "unionid": person.unionid}
    assert oauth.check_access_token() is True
    refreshed = oauth.refresh_access_token(token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["openid"] == sandbox.openid(3)


def test_base_scope_is_silent_and_cannot_read_the_profile(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    params = landing(authorize(sandbox, oauth, fake_openid=sandbox.openid(1)))
    token = oauth.fetch_access_token(params["code"])

    with pytest.raises(WeChatOAuthException) as info:
        oauth.get_user_info()

    assert token["openid"] == sandbox.openid(1)
    assert info.value.errcode == 48001


def test_code_is_single_use_and_expires_after_300_seconds(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    first = landing(authorize(sandbox, oauth, fake_person="p1"))["code"]
    second = landing(authorize(sandbox, oauth, fake_person="p1"))["code"]
    oauth.fetch_access_token(first)

    with pytest.raises(WeChatOAuthException) as used:
        oauth.fetch_access_token(first)
    sandbox.advance(301)
    with pytest.raises(WeChatOAuthException) as expired:
        oauth.fetch_access_token(second)

    assert (used.value.errcode, expired.value.errcode) == (40163, 40029)


def test_non_follower_gets_an_openid_and_stays_unsubscribed(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    response = authorize(sandbox, oauth, fake_person="new")
    token = oauth.fetch_access_token(landing(response)["code"])

    info = sandbox.mp_client().user.get(token["openid"])

    assert info["subscribe"] == 0
    assert response.headers["Set-Cookie"].startswith("fake_wechat_person=p")


def test_deny_lands_without_a_code(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT, scope="snsapi_userinfo", state="s2")

    params = landing(authorize(sandbox, oauth, fake_person="p2", fake_consent="deny"))

    assert params == {"state": "s2"}


def test_picker_page_when_no_browser_person_is_known(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)

    page = authorize(sandbox, oauth)

    assert page.status_code == 200
    assert "fake_person=p0" in page.text
    assert "fake_person=new" in page.text


def test_browser_person_from_cookie_or_control_default(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    session = sandbox.session()
    session.cookies.set("fake_wechat_person", "p4")
    by_cookie = landing(session.get(oauth.authorize_url, allow_redirects=False))
    sandbox.simulate_mp("set_browser_person", person=6)
    by_default = landing(authorize(sandbox, oauth))

    assert oauth.fetch_access_token(by_cookie["code"])["openid"] == sandbox.openid(4)
    assert oauth.fetch_access_token(by_default["code"])["openid"] == sandbox.openid(6)


def test_redirect_uri_outside_the_oauth_domains_is_an_error_page(sandbox):
    oauth = sandbox.oauth(redirect_uri="https://evil.example/cb")

    page = authorize(sandbox, oauth, fake_person="p1")

    assert (page.status_code, "redirect_uri 参数错误" in page.text) == (200, True)


def test_a_browser_can_use_the_host_prefixed_url(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    url = oauth.authorize_url.replace("https://", f"{sandbox.url}/")

    response = requests.get(url, params={"fake_person": "p2"}, allow_redirects=False)

    assert oauth.fetch_access_token(landing(response)["code"])["openid"] == sandbox.openid(2)


def test_sns_token_errors(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)
    oauth.fetch_access_token(landing(authorize(sandbox, oauth, fake_person="p1"))["code"])
    sandbox.advance(7201)

    with pytest.raises(WeChatOAuthException) as expired:
        oauth.check_access_token()
    with pytest.raises(WeChatOAuthException) as unknown:
        oauth.get_user_info(access_token="nope")
    with pytest.raises(WeChatOAuthException) as bad_refresh:
        oauth.refresh_access_token("nope")

    assert (expired.value.errcode, unknown.value.errcode, bad_refresh.value.errcode) == (
        42001, 40001, 40030)
