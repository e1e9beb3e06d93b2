"""WeCom web OAuth for corp members (the shopping guide's login): the authorize page on
open.weixin.qq.com picks a member, and qyapi's auth/getuserinfo exchanges the code."""

from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from wechatpy.exceptions import WeChatClientException
from wechatpy.work import WeChatClient

from integrations.sandbox.fixtures import DEMO_AGENTID, DEMO_CONTACT_SECRET, DEMO_CORPID
from integrations.sandbox.testing import sandbox_in_process, sandbox_server

REDIRECT = "http://testserver/guide/login/done/"
AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
OTHER_CORPID = "ww0000000000000b0b"
OTHER_SECRET = "OtherCorpSecret-00000000000000000000000000001"  # noqa: S105


def authorize_url(corpid=DEMO_CORPID, *, agentid=DEMO_AGENTID, redirect_uri=REDIRECT,
                  scope="snsapi_base", state="guide", **fake):
    """The URL the app sends the guide's browser to, in WeCom's parameter order."""
    params = {"appid": corpid, "redirect_uri": redirect_uri, "response_type": "code",
              "scope": scope, "state": state}
    if agentid is not None:
        params["agentid"] = agentid
    return f"{AUTHORIZE}?{urlencode({**params, **fake})}#wechat_redirect"


def with_params(url, **params):
    """Add query parameters before the ``#wechat_redirect`` fragment."""
    head, _, fragment = url.partition("#")
    return f"{head}&{urlencode(params)}" + (f"#{fragment}" if fragment else "")


def browse(sandbox, url, session=None):
    """One browser request through the sandbox, not following the redirect."""
    return (session or sandbox.session()).get(url, allow_redirects=False)


def landing(response) -> dict:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def login_code(sandbox, userid="guide002", **kwargs) -> str:
    return landing(browse(sandbox, authorize_url(fake_userid=userid, **kwargs)))["code"]


@pytest.fixture
def client(sandbox):
    """The app's WeCom client (contact secret), mounted on the sandbox."""
    return sandbox.mount(WeChatClient(DEMO_CORPID, DEMO_CONTACT_SECRET, timeout=(3.05, 10)))


def errcode(call) -> int:
    with pytest.raises(WeChatClientException) as info:
        call()
    return info.value.errcode


def exchange(client, code):
    return client.get("auth/getuserinfo", params={"code": code})


def test_guide_login_full_flow_over_http(sandbox, client):
    url = authorize_url(state="s-42", fake_userid="guide002")

    response = requests.get(url.replace("https://", f"{sandbox.url}/"), allow_redirects=False)
    params = landing(response)
    identity = exchange(client, params["code"])
    member = client.user.get(identity["userid"])

    assert params["state"] == "s-42"
    assert len(params["code"]) == 43
    assert response.headers["Set-Cookie"] == "fake_wecom_member=guide002; Path=/"
    assert identity == {"errcode": 0, "errmsg": "ok", "userid": "guide002"}
    assert member["name"] == sandbox.corps[DEMO_CORPID].members["guide002"].name


def test_deprecated_path_answers_the_same_and_agentid_is_optional(sandbox, client):
    url = client.oauth.authorize_url(REDIRECT, state="old")  # wechatpy: no agentid
    params = landing(browse(sandbox, with_params(url, fake_userid="guide003")))

    assert client.oauth.get_user_info(params["code"]) == {
        "errcode": 0, "errmsg": "ok", "userid": "guide003"}
    assert params["state"] == "old"


def test_picker_lists_the_active_members_and_its_links_log_in(sandbox, client):
    sandbox.simulate_work("member_resigns", userid="guide004")
    session = sandbox.session()
    url = authorize_url()

    page = browse(sandbox, url, session)
    links = [part.split('"')[0].replace("&amp;", "&") for part in page.text.split('href="')[1:]]
    chosen = next(link for link in links if "fake_userid=guide003" in link)
    params = landing(session.get(urljoin(url, chosen), allow_redirects=False))

    members = sandbox.corps[DEMO_CORPID].members
    assert page.status_code == 200
    for userid in ("guide001", "guide002", "guide003"):
        assert f"{members[userid].name} ({userid})" in page.text
        assert any(f"fake_userid={userid}" in link for link in links)
    assert "guide004" not in page.text
    assert exchange(client, params["code"])["userid"] == "guide003"


def test_member_from_cookie_then_control_default(sandbox, client):
    session = sandbox.session()
    session.cookies.set("fake_wecom_member", "guide001")
    by_cookie = landing(browse(sandbox, authorize_url(), session))["code"]
    sandbox.set_browser_member("guide003")
    by_default = landing(browse(sandbox, authorize_url()))["code"]
    reply = requests.post(
        f"{sandbox.url}/__fake__/work/{DEMO_CORPID}/simulate/set_browser_member",
        json={"userid": "guide002"})
    by_http = landing(browse(sandbox, authorize_url()))["code"]
    sandbox.set_browser_member(None)
    picker = browse(sandbox, authorize_url())

    assert exchange(client, by_cookie)["userid"] == "guide001"
    assert exchange(client, by_default)["userid"] == "guide003"
    assert (reply.status_code, reply.json()["userid"]) == (200, "guide002")
    assert exchange(client, by_http)["userid"] == "guide002"
    assert (picker.status_code, "fake_userid=guide001" in picker.text) == (200, True)


def test_unknown_member_and_bad_agentid_are_error_pages(sandbox):
    unknown = browse(sandbox, authorize_url(fake_userid="nobody"))
    bad_agent = browse(sandbox, authorize_url(agentid=1000999, fake_userid="guide001"))
    not_a_number = browse(sandbox, authorize_url(agentid="abc"))

    assert (unknown.status_code, "nobody 不存在" in unknown.text) == (200, True)
    for page in (bad_agent, not_a_number):
        assert (page.status_code, "agentid 参数错误" in page.text) == (200, True)
    assert sandbox.corps[DEMO_CORPID].oauth_codes == {}


def test_redirect_uri_outside_the_trusted_domains_is_an_error_page(sandbox):
    page = browse(sandbox, authorize_url(redirect_uri="https://evil.example/cb",
                                         fake_userid="guide001"))

    assert (page.status_code, "可信域名" in page.text) == (200, True)
    assert sandbox.corps[DEMO_CORPID].oauth_domains == [
        "127.0.0.1:8000", "localhost:8000", "testserver"]


def test_trusted_domains_come_from_the_corp_fixture():
    with sandbox_in_process("small", work={DEMO_CORPID: {"oauth_domains": ["h5.shop.test"]}}) \
            as sb:
        allowed = browse(sb, authorize_url(redirect_uri="https://h5.shop.test/login",
                                           fake_userid="guide001"))
        refused = browse(sb, authorize_url(fake_userid="guide001"))

    assert allowed.headers["Location"].startswith("https://h5.shop.test/login?code=")
    assert "可信域名" in refused.text


def test_code_is_single_use(sandbox, client):
    code = login_code(sandbox)
    exchange(client, code)

    assert errcode(lambda: exchange(client, code)) == 40029
    assert errcode(lambda: client.get("user/getuserinfo", params={"code": code})) == 40029


def test_code_expires_after_five_minutes(sandbox, client):
    early, late = login_code(sandbox, "guide001"), login_code(sandbox, "guide002")

    sandbox.advance(299)
    assert exchange(client, early)["userid"] == "guide001"
    sandbox.advance(2)
    assert errcode(lambda: exchange(client, late)) == 40029


def test_code_expires_after_301_seconds(sandbox, client):
    code = login_code(sandbox)

    sandbox.advance(301)

    assert errcode(lambda: exchange(client, code)) == 40029


def test_unknown_and_missing_code(client):
    assert errcode(lambda: exchange(client, "x" * 43)) == 40029
    assert errcode(lambda: client.get("auth/getuserinfo")) == 41008


def test_a_code_of_another_corp_is_invalid():
    other = {OTHER_CORPID: {"apps": {"guide": {"secret": OTHER_SECRET, "agentid": 1000002}},
                            "members": [{"userid": "zhangsan", "name": "张三"}]}}
    with sandbox_server("small", work=other) as sb:
        ours = sb.mount(WeChatClient(DEMO_CORPID, DEMO_CONTACT_SECRET))
        theirs = sb.mount(WeChatClient(OTHER_CORPID, OTHER_SECRET))
        foreign = login_code(sb, "zhangsan", corpid=OTHER_CORPID, agentid=1000002)
        own = login_code(sb, "zhangsan", corpid=OTHER_CORPID, agentid=1000002)

        assert errcode(lambda: exchange(ours, foreign)) == 40029
        assert exchange(theirs, own)["userid"] == "zhangsan"
        assert theirs.user.get("zhangsan")["name"] == "张三"


def test_a_code_is_bound_to_the_agent_app():
    apps = {"guide": {"secret": OTHER_SECRET, "agentid": 1000002}}
    with sandbox_server("small", work={DEMO_CORPID: {"apps": apps}}) as sb:
        contact = sb.work_client(app="contact")
        guide_app = sb.work_client(app="guide")
        for_guide_app = login_code(sb, agentid=1000002)
        unbound = login_code(sb, agentid=None)

        assert errcode(lambda: exchange(contact, for_guide_app)) == 40029
        assert exchange(guide_app, for_guide_app)["userid"] == "guide002"
        assert exchange(contact, unbound)["userid"] == "guide002"


def test_legacy_key_spelling_behind_a_fixture_flag():
    with sandbox_in_process("small", work={DEMO_CORPID: {"legacy_oauth_keys": True}}) as sb:
        client = sb.work_client()
        answers = [client.get(path, params={"code": login_code(sb)})
                   for path in ("auth/getuserinfo", "user/getuserinfo")]

    assert answers == [{"errcode": 0, "errmsg": "ok", "UserId": "guide002"}] * 2


def test_user_ticket_only_with_the_privateinfo_scope(sandbox, client):
    private = login_code(sandbox, scope="snsapi_privateinfo")
    without_agent = browse(sandbox, authorize_url(scope="snsapi_privateinfo", agentid=None,
                                                  fake_userid="guide002"))
    bad_scope = browse(sandbox, authorize_url(scope="snsapi_userinfo", fake_userid="guide002"))

    identity = exchange(client, private)

    assert (identity["userid"], len(identity["user_ticket"])) == ("guide002", 86)
    assert "agentid" in without_agent.text
    assert "scope 参数错误" in bad_scope.text


def test_mp_authorize_is_unchanged_for_an_mp_appid(sandbox):
    oauth = sandbox.oauth(redirect_uri=REDIRECT)

    params = landing(browse(sandbox, with_params(oauth.authorize_url, fake_person="p1")))

    assert oauth.fetch_access_token(params["code"])["openid"] == sandbox.openid(1)


def test_demo_guides_have_chinese_names_from_user_get():
    with sandbox_in_process("demo") as sb:
        client = sb.work_client()
        members = sb.corps[DEMO_CORPID].members
        names = {u: client.user.get(u)["name"] for u in members}

    assert len(names) == 15
    for userid, name in names.items():
        assert name == members[userid].name
        assert 2 <= len(name) <= 4
        assert all("\u4e00" <= ch <= "\u9fff" for ch in name), name
    assert len(set(names.values())) == len(names)
