"""State-coupled simulations (WECHAT.md §4.11), fixture options, and the serve command."""

import os
import subprocess
import sys
import time

import pytest
import requests
import xmltodict
from wechatpy import parse_message
from wechatpy.exceptions import WeChatClientException

from integrations.sandbox import FakeWeChat
from integrations.sandbox.fixtures import DEMO_CORPID, DEMO_MP_APPID
from integrations.sandbox.testing import client_receiver, sandbox_in_process, sandbox_server


def test_the_demo_fixture_has_the_promised_shape():
    sandbox = FakeWeChat("demo")
    corp = sandbox.corps[DEMO_CORPID]

    assert sandbox.mp_apps[DEMO_MP_APPID].followers.subscribed_count == 2000
    assert len([m for m in corp.members.values() if m.follow_enabled]) == 12
    assert 1400 <= len(corp.customers) <= 1600
    assert (len(corp.group_chats), corp.live_tag_count()) == (30, 9)
    assert sandbox.mp_apps[DEMO_MP_APPID].callback_url == (
        f"http://127.0.0.1:8000/wechat/mp/{DEMO_MP_APPID}/callback/")
    assert corp.apps["contact"].callback_url == (
        f"http://127.0.0.1:8000/wechat/work/{DEMO_CORPID}/callback/")


def test_some_customers_are_followers_with_the_same_unionid():
    with sandbox_in_process("demo") as sb:
        corp, followers = sb.corps[DEMO_CORPID], sb.mp_apps[DEMO_MP_APPID].followers
        shared = [c for c in corp.customers.values()
                  if c.person is not None and followers.is_base(c.person)
                  and sb.persons.get(c.person).has_unionid]
        customer = shared[0]
        mp_user = sb.mp_client().user.get(sb.openid(customer.person))
        work_user = sb.work_client().external_contact.get(customer.external_userid)

        assert 0.3 < len(shared) / len(corp.customers) < 0.5
        assert mp_user["unionid"] == work_user["external_contact"]["unionid"]


def test_fixture_overrides_for_credentials_and_callback_urls():
    sandbox = FakeWeChat("small", callback_base_url="http://web:8000",
                         mp={DEMO_MP_APPID: {"secret": "s3cr3t", "msg_mode": "plain"}},
                         work={DEMO_CORPID: {"apps": {"contact": {"secret": "cs"}}}})

    app, corp_app = sandbox.mp_apps[DEMO_MP_APPID], sandbox.corps[DEMO_CORPID].apps["contact"]
    assert (app.secret, app.msg_mode, corp_app.secret) == ("s3cr3t", "plain", "cs")
    assert app.callback_url == f"http://web:8000/wechat/mp/{DEMO_MP_APPID}/callback/"
    assert corp_app.callback_url.startswith("http://web:8000/wechat/work/")


def test_async_delivery_runs_in_the_background():
    received = []
    with sandbox_server("small", deliver="async") as sb:
        sb.callbacks.receiver = lambda request: (received.append(request) or 200, "success")

        result = sb.simulate_mp("subscribe", new_person={})
        sb.callbacks.wait_idle()

        assert result.deliveries == []
        assert [d.outcome for d in sb.callbacks.deliveries] == ["ok"]
        assert len(received) == 1


def test_subscription_message_needs_a_consent(sandbox):
    client = sandbox.mp_client()
    openid = sandbox.openid(1)
    data = {"thing1": {"value": "满100减20"}, "time2": {"value": "2025-01-31"}}

    with pytest.raises(WeChatClientException) as refused:
        client.message.send_subscribe_message(openid, "SUB_COUPON_EXPIRY", data)
    consent = sandbox.simulate_mp("subscribe_msg_consent", openid=openid,
                                  template_id="SUB_COUPON_EXPIRY")
    client.message.send_subscribe_message(openid, "SUB_COUPON_EXPIRY", data)
    with pytest.raises(WeChatClientException) as used_up:
        client.message.send_subscribe_message(openid, "SUB_COUPON_EXPIRY", data)

    assert (refused.value.errcode, used_up.value.errcode) == (43101, 43101)
    assert consent.events[0].kind == "subscribe_msg_popup_event"
    assert [row["template_id"] for row in sandbox.outbox("subscribe")] == ["SUB_COUPON_EXPIRY"]
    assert client.template.get_subscribe_message_templates()[0]["priTmplId"] == (
        "SUB_COUPON_EXPIRY")


def test_resubscribe_keeps_the_follower_in_place(sandbox):
    sandbox.simulate_mp("unsubscribe", person=3)
    result = sandbox.simulate_mp("subscribe", person=3, scene="ADD_SCENE_PROFILE_CARD")

    openids = list(sandbox.mp_client().user.iter_followers())

    assert openids.index(result["openid"]) == 3
    assert result["subscribed"] is True
    assert sandbox.simulate_mp("subscribe", person=3)["subscribed"] is False


def test_console_welcome_and_half_adds():
    with sandbox_server("small", work={DEMO_CORPID: {"console_welcome": True}}) as sb:
        result = sb.simulate_work("add_customer", userid="guide001", new_person={}, half=True)

        inner = result.events[0].inner_xml(DEMO_CORPID)
        assert "<ChangeType><![CDATA[add_half_external_contact]]></ChangeType>" in inner
        assert "WelcomeCode" not in inner
        assert result["welcome_code"] is None


def test_wecom_users_as_customers_have_a_wo_id(sandbox):
    result = sandbox.simulate_work("add_customer", userid="guide002",
                                   new_person={"type": 2, "corp_name": "合作伙伴"})

    contact = sandbox.work_client().external_contact.get(result["external_userid"])[
        "external_contact"]

    assert result["external_userid"].startswith("wo")
    assert (contact["type"], contact["corp_name"]) == (2, "合作伙伴")
    assert "unionid" not in contact


def test_customer_edited_changes_the_follow(sandbox):
    ext = sandbox.corps[DEMO_CORPID].by_member["guide001"][0][1]
    sandbox.simulate_work("customer_edited", userid="guide001", external_userid=ext,
                          remark="王总", description="喜欢红酒")

    follow = next(f for f in sandbox.work_client().external_contact.get(ext)["follow_user"]
                  if f["userid"] == "guide001")

    assert (follow["remark"], follow["description"]) == ("王总", "喜欢红酒")


def test_group_chat_updates_are_visible_through_the_api(sandbox):
    corp = sandbox.corps[DEMO_CORPID]
    chat = next(iter(corp.group_chats.values()))
    leaving = chat.members[-1].userid
    sandbox.simulate_work("groupchat", action="del_member", chat_id=chat.chat_id,
                          members=[leaving], quit_scene=1)
    sandbox.simulate_work("groupchat", action="change_name", chat_id=chat.chat_id, name="VIP群")
    sandbox.simulate_work("groupchat", action="change_owner", chat_id=chat.chat_id,
                          owner="guide002")

    detail = sandbox.work_client().external_contact.get_group_chat_info(chat.chat_id)[
        "group_chat"]
    kinds = [dict(e.fields).get("UpdateDetail") for e in sandbox.callbacks.pending()]

    assert leaving not in [m["userid"] for m in detail["member_list"]]
    assert (detail["name"], detail["owner"]) == ("VIP群", "guide002")
    assert kinds == ["del_member", "change_name", "change_owner"]


def test_api_tag_changes_call_back_only_when_enabled():
    with sandbox_server("small", work={DEMO_CORPID: {"emit_tag_events": True,
                                                     "emit_on_api_mark": True}}) as sb:
        client = sb.work_client()
        group = client.external_contact.add_corp_tag(None, "渠道", 0, [{"name": "抖音"}])
        ext = sb.corps[DEMO_CORPID].by_member["guide001"][0][1]
        client.external_contact.mark_tag("guide001", ext,
                                         add_tag=[group["tag_group"]["tag"][0]["id"]])

        assert [e.kind for e in sb.callbacks.pending()] == [
            "change_external_tag/create", "change_external_contact/edit_external_contact"]


def test_stale_cursors_expire_when_configured():
    with sandbox_server("small", work={DEMO_CORPID: {"cursor_ttl_s": 60}}) as sb:
        client = sb.work_client()
        page = client.post("externalcontact/batch/get_by_user",
                           data={"userid_list": ["guide001"], "limit": 1})
        sb.advance(61)

        with pytest.raises(WeChatClientException) as info:
            client.post("externalcontact/batch/get_by_user", data={
                "userid_list": ["guide001"], "limit": 1, "cursor": page["next_cursor"]})

        assert info.value.errcode == 40058


def test_unlicensed_members_are_reported():
    members = [{"userid": "guide001", "name": "甲"}, {"userid": "temp01", "name": "乙",
                                                     "unlicensed": True}]
    with sandbox_server("small", work={DEMO_CORPID: {"members": members}}) as sb:
        page = sb.work_client().post("externalcontact/batch/get_by_user",
                                     data={"userid_list": ["guide001", "temp01"]})

        assert page["fail_info"] == {"unlicensed_userid_list": ["temp01"]}


def test_events_parse_after_a_django_style_post(local_sandbox):
    """What an app test does without sockets: build, then hand path + body to its client."""
    result = local_sandbox.simulate_mp("scan", person=1, scene=7)
    request = local_sandbox.callbacks.build(result.events[0])

    assert request.method == "POST"
    assert request.path_with_query.split("?")[0] == f"/wechat/mp/{DEMO_MP_APPID}/callback/"
    assert request.headers == {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}
    encrypted = xmltodict.parse(request.body)["xml"]["Encrypt"]
    crypto = local_sandbox.callbacks.target("mp", DEMO_MP_APPID).crypto
    assert parse_message(crypto.decrypt(encrypted)).scene_id == "7"


def test_serve_command_starts_and_answers():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.sandbox", "serve", "--fixture", "small",
         "--port", "0", "--seed", "5"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stderr.readline()
        url = line.split(" on ")[1].split(" ")[0]
        deadline = time.monotonic() + 10
        while True:
            try:
                health = requests.get(f"{url}/__fake__/health", timeout=1).json()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        assert (health["ok"], health["seed"]) == (True, 5)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


class _DjangoLikeClient:
    def __init__(self):
        self.seen = []

    def generic(self, method, path, data, content_type):
        self.seen.append((method, path, data, content_type))
        return type("Response", (), {"status_code": 200, "content": b"success"})()


def test_client_receiver_feeds_a_test_client_synchronously():
    client = _DjangoLikeClient()
    with sandbox_in_process("small", deliver="sync") as sb:
        sb.callbacks.receiver = client_receiver(client)

        result = sb.simulate_work("add_customer", userid="guide001", new_person={})

        assert [d.outcome for d in result.deliveries] == ["ok"]
        method, path, data, content_type = client.seen[0]
        assert (method, content_type) == ("POST", "text/xml")
        assert path.startswith(f"/wechat/work/{DEMO_CORPID}/callback/?msg_signature=")
        assert data.startswith(b"<xml><ToUserName><![CDATA[" + DEMO_CORPID.encode())


def test_fixture_from_a_json_file(tmp_path):
    path = tmp_path / "tenant.json"
    path.write_text('{"seed": 4, "mp": [{"appid": "wx2222222222222222", '
                    '"followers": {"count": 12}}], "work": []}', encoding="utf-8")

    sandbox = FakeWeChat(str(path), page_size=5)

    app = sandbox.mp_apps["wx2222222222222222"]
    assert (sandbox.seed, app.followers.subscribed_count, app.page_size) == (4, 12, 5)
    assert len(app.secret) == 32
    assert len(app.encoding_aes_key) == 43
