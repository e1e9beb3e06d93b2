"""The real wechatpy 2.0.0a26 Official Account client against the sandbox over HTTP."""

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from integrations.sandbox.fixtures import DEMO_MP_APPID, DEMO_MP_SECRET
from integrations.sandbox.testing import sandbox_server

PAGE = 3
INFO_KEYS = ["subscribe", "openid", "nickname", "sex", "language", "city", "province",
             "country", "headimgurl", "subscribe_time", "unionid", "remark", "groupid",
             "tagid_list", "subscribe_scene", "qr_scene", "qr_scene_str"]


def user_get_calls(sb):
    return [c for c in sb.calls() if c["path"] == "/cgi-bin/user/get"]


@pytest.mark.parametrize(("followers", "expected_calls"), [(0, 1), (1, 2), (PAGE, 2),
                                                           (PAGE + 1, 3), (2 * PAGE, 3)])
def test_iter_followers_stops_cleanly_on_every_page_boundary(followers, expected_calls):
    with sandbox_server("small", followers=followers, page_size=PAGE) as sb:
        client = sb.mp_client()

        openids = list(client.user.iter_followers())

        assert openids == sb.openids(range(followers))
        assert len(user_get_calls(sb)) == expected_calls


def test_get_batch_returns_the_profile_in_request_order(sandbox):
    client = sandbox.mp_client()
    openids = sandbox.openids([4, 0, 7])

    users = client.user.get_batch(openids)

    assert [u["openid"] for u in users] == openids
    assert list(users[0]) == INFO_KEYS
    first = users[1]
    assert first["subscribe"] == 1
    assert first["unionid"] == sandbox.persons.unionid(0)
    assert first["tagid_list"] == [100]  # the fixture's VIP tag holds every 5th follower
    assert (first["nickname"], first["headimgurl"], first["sex"]) == ("", "", 0)


def test_get_batch_refuses_a_foreign_openid_for_the_whole_call(sandbox):
    client = sandbox.mp_client()
    other_app = "o" + "x" * 27

    with pytest.raises(WeChatClientException) as info:
        client.user.get_batch([sandbox.openid(1), other_app])

    assert info.value.errcode == 40003


def test_batchget_caps_at_100_openids(sandbox):
    client = sandbox.mp_client()

    with pytest.raises(WeChatClientException) as info:
        client.user.get_batch([sandbox.openid(0)] * 101)

    assert info.value.errcode == 40032


def test_user_info_of_an_unsubscribed_follower_withholds_the_profile(sandbox):
    client = sandbox.mp_client()
    sandbox.simulate_mp("unsubscribe", person=2)

    info = client.user.get(sandbox.openid(2))

    assert info == {"subscribe": 0, "openid": sandbox.openid(2),
                    "unionid": sandbox.persons.unionid(2)}


def test_update_remark_shows_in_user_info(sandbox):
    client = sandbox.mp_client()

    client.user.update_remark(sandbox.openid(3), "老客户")

    assert client.user.get(sandbox.openid(3))["remark"] == "老客户"


def test_tag_lifecycle_with_wechatpy(sandbox):
    client = sandbox.mp_client()
    tag = client.tag.create("上海门店")
    openids = sandbox.openids([1, 2, 3])

    client.tag.tag_user(tag["id"], openids)
    client.tag.update(tag["id"], "上海南京西路店")
    counts = {t["name"]: t["count"] for t in client.tag.get()}
    members = list(client.tag.iter_tag_users(tag["id"]))
    user_tags = client.tag.get_user_tag(openids[0])
    client.tag.untag_user(tag["id"], openids[:2])
    after_untag = client.tag.get_tag_users(tag["id"])
    client.tag.untag_user(tag["id"], openids[2:])
    client.tag.delete(tag["id"])

    assert tag == {"id": 101, "name": "上海门店"}
    assert counts == {"星标组": 0, "VIP": 4, "上海南京西路店": 3}
    assert members == openids
    assert user_tags == [101]
    assert after_untag == {"count": 1, "data": {"openid": openids[2:]},
                           "next_openid": openids[2]}
    assert [t["name"] for t in client.tag.get()] == ["星标组", "VIP"]


def test_tag_errors_use_the_documented_codes(sandbox):
    client = sandbox.mp_client()
    codes = {}
    for label, call in {
        "duplicate": lambda: client.tag.create("VIP"),
        "too_long": lambda: client.tag.create("标" * 11),
        "reserved": lambda: client.tag.update(2, "x"),
        "unknown": lambda: client.tag.tag_user(999, [sandbox.openid(0)]),
        "too_many": lambda: client.tag.tag_user(100, [sandbox.openid(0)] * 51),
        "foreign": lambda: client.tag.tag_user(100, ["o" + "y" * 27]),
    }.items():
        with pytest.raises(WeChatClientException) as info:
            call()
        codes[label] = info.value.errcode

    assert codes == {"duplicate": 45157, "too_long": 45158, "reserved": 45058,
                     "unknown": 45159, "too_many": 40032, "foreign": 49003}


def test_send_template_goes_to_the_outbox_and_calls_back(sandbox):
    client = sandbox.mp_client()
    openid = sandbox.openid(5)
    data = {"thing1": {"value": "新人礼券"}, "amount2": {"value": "50元"},
            "time3": {"value": "2025-01-01"}}

    result = client.message.send_template(openid, "TPL_COUPON", data)

    assert result["errcode"] == 0
    (row,) = sandbox.outbox("template")
    assert (row["msgid"], row["touser"], row["data"]) == (result["msgid"], openid, data)
    (event,) = sandbox.callbacks.pending()
    assert event.kind == "TEMPLATESENDJOBFINISH"
    assert dict(event.fields) == {"Event": "TEMPLATESENDJOBFINISH", "MsgID": result["msgid"],
                                  "Status": "success"}


def test_client_msg_id_deduplicates_template_sends(sandbox):
    client = sandbox.mp_client()
    body = {"touser": sandbox.openid(5), "template_id": "TPL_COUPON",
            "client_msg_id": "coupon-42",
            "data": {"thing1": {"value": "券"}, "amount2": {"value": "5元"},
                     "time3": {"value": "今天"}}}

    first = client.post("message/template/send", data=body)
    second = client.post("message/template/send", data=body)

    assert first["msgid"] == second["msgid"]
    assert len(sandbox.outbox("template")) == 1


def test_template_send_validates_recipient_and_data(sandbox):
    client = sandbox.mp_client()
    sandbox.simulate_mp("unsubscribe", person=6)
    long_thing = {"thing1": {"value": "超" * 21}, "amount2": {"value": "1"},
                  "time3": {"value": "1"}}
    cases = [
        (sandbox.openid(6), "TPL_COUPON", long_thing, 43004),
        (sandbox.openid(1), "TPL_NOPE", long_thing, 40037),
        (sandbox.openid(1), "TPL_COUPON", long_thing, 47003),
        (sandbox.openid(1), "TPL_COUPON", {"thing1": {"value": "x"}}, 47003),
    ]
    messages = []
    for touser, template, data, code in cases:
        with pytest.raises(WeChatClientException) as info:
            client.message.send_template(touser, template, data)
        assert info.value.errcode == code
        messages.append(info.value.errmsg)

    assert messages[2].startswith("argument invalid! data.thing1.value exceeds 20 characters")
    assert messages[3].startswith("argument invalid! data.amount2.value is empty rid: ")


def test_blocked_follower_reports_a_failed_job(sandbox):
    client = sandbox.mp_client()
    sandbox.simulate_mp("block", person=1)

    client.message.send_template(sandbox.openid(1), "TPL_POINTS", {
        k: {"value": "1"} for k in ("first", "keyword1", "keyword2", "remark")})

    assert dict(sandbox.callbacks.pending()[0].fields)["Status"] == "failed:user block"


def test_private_templates_are_listed_through_the_absolute_api_base(sandbox):
    client = sandbox.mp_client()

    templates = client.template.get_all_private_template()["template_list"]

    assert [t["template_id"] for t in templates] == ["TPL_COUPON", "TPL_POINTS"]
    assert templates[0]["content"] == "{{thing1.DATA}}\n{{amount2.DATA}}\n{{time3.DATA}}"


def test_qrcode_create_and_show(sandbox):
    client = sandbox.mp_client()

    temporary = client.qrcode.create({"expire_seconds": 600, "action_name": "QR_STR_SCENE",
                                      "action_info": {"scene": {"scene_str": "store_sh001"}}})
    permanent = client.qrcode.create({"action_name": "QR_LIMIT_SCENE",
                                      "action_info": {"scene": {"scene_id": 42}}})
    image = sandbox.session().get(client.qrcode.get_url(temporary["ticket"]))
    sandbox.advance(601)
    expired = sandbox.session().get(client.qrcode.get_url(temporary["ticket"]))

    assert list(temporary) == ["ticket", "expire_seconds", "url"]
    assert temporary["expire_seconds"] == 600
    assert list(permanent) == ["ticket", "url"]
    assert permanent["url"].startswith("http://weixin.qq.com/q/")
    assert (image.status_code, image.headers["Content-Type"]) == (200, "image/png")
    assert image.content.startswith(b"\x89PNG")
    assert expired.status_code == 404


@pytest.mark.parametrize("body", [
    {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 0}}},
    {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}},
    {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}},
    {"action_name": "QR_SCENE", "expire_seconds": 2592001,
     "action_info": {"scene": {"scene_id": 1}}},
    {"action_name": "QR_BOGUS", "action_info": {"scene": {"scene_id": 1}}},
])
def test_qrcode_limits(sandbox, body):
    with pytest.raises(WeChatClientException) as info:
        sandbox.mp_client().qrcode.create(body)

    assert info.value.errcode == 40053


def test_token_refetch_keeps_the_old_token_for_the_grace_period(sandbox):
    session = requests.Session()
    url = f"{sandbox.url}/api.weixin.qq.com/cgi-bin/"
    params = {"grant_type": "client_credential", "appid": DEMO_MP_APPID,
              "secret": DEMO_MP_SECRET}
    old = session.get(url + "token", params=params).json()["access_token"]
    new = session.get(url + "token", params=params).json()["access_token"]

    def tags_with(token):
        return session.get(url + "tags/get", params={"access_token": token}).json()

    in_grace = tags_with(old)
    sandbox.advance(301)
    after_grace = tags_with(old)

    assert old != new
    assert "tags" in in_grace
    assert after_grace["errcode"] == 40001
    assert "tags" in tags_with(new)
    sandbox.advance(7200)
    assert tags_with(new)["errcode"] == 42001


def test_token_request_validation(sandbox):
    url = f"{sandbox.url}/api.weixin.qq.com/cgi-bin/token"

    def code(**params):
        base = {"grant_type": "client_credential", "appid": DEMO_MP_APPID,
                "secret": DEMO_MP_SECRET}
        return requests.get(url, params={**base, **params}).json().get("errcode")

    assert (code(grant_type="x"), code(appid="wxnope"), code(secret="bad")) == (
        40002, 40013, 40125)


def test_stable_token_is_stable_and_isolated_from_token(sandbox):
    url = f"{sandbox.url}/api.weixin.qq.com/cgi-bin/"
    body = {"grant_type": "client_credential", "appid": DEMO_MP_APPID,
            "secret": DEMO_MP_SECRET}

    first = requests.post(url + "stable_token", json=body).json()
    requests.get(url + "token", params=body)
    again = requests.post(url + "stable_token", json=body).json()
    sandbox.advance(7200 - 299)
    renewed = requests.post(url + "stable_token", json=body).json()
    old_still_works = requests.get(url + "tags/get",
                                   params={"access_token": first["access_token"]}).json()
    forced = requests.post(url + "stable_token", json={**body, "force_refresh": True}).json()
    too_soon = requests.post(url + "stable_token", json={**body, "force_refresh": True}).json()
    old_after_force = requests.get(url + "tags/get",
                                   params={"access_token": renewed["access_token"]}).json()

    assert first["access_token"] == again["access_token"]
    assert first["expires_in"] == 7200
    assert renewed["access_token"] != first["access_token"]
    assert "tags" in old_still_works
    assert forced["access_token"] != renewed["access_token"]
    assert too_soon["errcode"] == 45011
    assert old_after_force["errcode"] == 40001


def test_user_info_details_for_a_qr_follower(sandbox):
    client = sandbox.mp_client()
    ticket = client.qrcode.create({"action_name": "QR_LIMIT_STR_SCENE",
                                   "action_info": {"scene": {"scene_str": "store_sh001"}}})
    scan = sandbox.simulate_mp("scan", new_person={}, ticket=ticket["ticket"])

    info = client.user.get(scan["openid"])

    assert (info["subscribe_scene"], info["qr_scene"], info["qr_scene_str"]) == (
        "ADD_SCENE_QR_CODE", 0, "store_sh001")
    assert info["subscribe_time"] == sandbox.clock.ts()
    assert list(client.user.iter_followers())[-1] == scan["openid"]


def test_unknown_cursor_and_language_are_40003(sandbox):
    client = sandbox.mp_client()

    with pytest.raises(WeChatClientException) as cursor:
        client.user.get_followers("o" + "q" * 27)
    with pytest.raises(WeChatClientException) as lang:
        client.get("user/info", params={"openid": sandbox.openid(0), "lang": "fr"})

    assert (cursor.value.errcode, lang.value.errcode) == (40003, 40003)


def test_ip_whitelist_and_profile_key_options():
    options = {"ip_whitelist": ["10.0.0.1"], "legacy_profile_keys": False}
    with sandbox_server("small", mp={DEMO_MP_APPID: options}) as sb:
        refused = requests.get(f"{sb.url}/api.weixin.qq.com/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": DEMO_MP_APPID,
            "secret": DEMO_MP_SECRET}).json()
        sb.mp_apps[DEMO_MP_APPID].ip_whitelist = None

        info = sb.mp_client().user.get(sb.openid(1))

        assert refused["errcode"] == 40164
        assert refused["errmsg"].startswith("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in")
        assert "nickname" not in info
        assert "headimgurl" not in info
        assert info["subscribe"] == 1
