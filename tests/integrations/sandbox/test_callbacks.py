"""Callbacks built by the sandbox, opened with wechatpy's own crypto and parsers."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature
from wechatpy.work import parse_message as parse_work_message
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

from integrations.sandbox.fixtures import (
    DEMO_CORPID,
    DEMO_MP_AES_KEY,
    DEMO_MP_APPID,
    DEMO_MP_TOKEN,
    DEMO_WORK_AES_KEY,
    DEMO_WORK_TOKEN,
)
from integrations.sandbox.testing import sandbox_server

MP_CRYPTO = WeChatCrypto(DEMO_MP_TOKEN, DEMO_MP_AES_KEY, DEMO_MP_APPID)
WORK_CRYPTO = WorkCrypto(DEMO_WORK_TOKEN, DEMO_WORK_AES_KEY, DEMO_CORPID)


def open_mp(request) -> str:
    q = request.query
    check_signature(DEMO_MP_TOKEN, q["signature"], q["timestamp"], q["nonce"])
    return MP_CRYPTO.decrypt_message(request.body, q["msg_signature"], q["timestamp"],
                                     q["nonce"])


def open_work(request) -> str:
    q = request.query
    return WORK_CRYPTO.decrypt_message(request.body, q["msg_signature"], q["timestamp"],
                                       q["nonce"])


def test_scan_by_a_non_follower_is_subscribe_with_the_scene(sandbox):
    result = sandbox.simulate_mp("scan", new_person={}, scene=123)
    request = sandbox.callbacks.build(result.events[0])

    event = parse_message(open_mp(request))

    assert (event.type, event.event) == ("event", "subscribe_scan")
    assert event.scene_id == "123"
    assert event.ticket == result["ticket"]
    assert event.source == result["openid"]
    assert request.query["openid"] == result["openid"]
    assert request.query["encrypt_type"] == "aes"
    assert request.body.startswith(b"<xml><ToUserName><![CDATA[gh_f00d00000001]]></ToUserName>"
                                   b"<Encrypt><![CDATA[")
    assert request.path_with_query.startswith(
        f"/wechat/mp/{DEMO_MP_APPID}/callback/?signature=")


def test_scan_by_a_follower_is_scan_without_prefix(sandbox):
    result = sandbox.simulate_mp("scan", person=2, scene="store_sh001")

    event = parse_message(open_mp(sandbox.callbacks.build(result.events[0])))

    assert (event.event, event.scene_id) == ("scan", "store_sh001")


def test_unsubscribe_event_matches_the_api_state(sandbox):
    result = sandbox.simulate_mp("unsubscribe", person=1)

    event = parse_message(open_mp(sandbox.callbacks.build(result.events[0])))

    assert (event.event, event.source) == ("unsubscribe", sandbox.openid(1))
    assert sandbox.mp_client().user.get(sandbox.openid(1))["subscribe"] == 0


@pytest.mark.parametrize("mode", ["plain", "compat"])
def test_plain_and_compatible_modes(mode):
    with sandbox_server("small", mp={DEMO_MP_APPID: {"msg_mode": mode}}) as sb:
        result = sb.simulate_mp("subscribe", new_person={})
        request = sb.callbacks.build(result.events[0])
        q = request.query

        check_signature(DEMO_MP_TOKEN, q["signature"], q["timestamp"], q["nonce"])
        visible = parse_message(request.body)
        assert (visible.event, visible.source) == ("subscribe", result["openid"])
        if mode == "plain":
            assert "encrypt_type" not in q
            assert b"<Encrypt>" not in request.body
        else:
            assert parse_message(open_mp(request)).source == result["openid"]


def test_template_job_finish_event(sandbox):
    sandbox.mp_client().message.send_template(sandbox.openid(1), "TPL_POINTS", {
        k: {"value": "1"} for k in ("first", "keyword1", "keyword2", "remark")})

    (pending,) = sandbox.callbacks.pending()
    event = parse_message(open_mp(sandbox.callbacks.build(pending)))

    assert (event.event, event.status) == ("templatesendjobfinish", "success")


def test_add_customer_through_a_contact_way_carries_state_and_welcome_code(sandbox):
    corp = sandbox.corps[DEMO_CORPID]
    way = next(w for w in corp.contact_ways.values() if w["state"] == "store_sh001")
    result = sandbox.simulate_work("add_customer", userid="guide001",
                                   config_id=way["config_id"], person=1)
    request = sandbox.callbacks.build(result.events[0])

    event = parse_work_message(open_work(request))
    envelope = xmltodict.parse(request.body)["xml"]

    assert (event.event, event.change_type, event.user_id) == (
        "change_external_contact", "add_external_contact", "guide001")
    assert event.external_user_id == result["external_userid"] == sandbox.external_userid(1)
    assert (event.state, event.welcome_code) == ("store_sh001", result["welcome_code"])
    assert (envelope["ToUserName"], envelope["AgentID"]) == (DEMO_CORPID, "2000003")
    assert set(request.query) == {"msg_signature", "timestamp", "nonce"}
    detail = sandbox.work_client().external_contact.get(result["external_userid"])
    assert detail["external_contact"]["unionid"] == sandbox.persons.unionid(1)
    assert [f["state"] for f in detail["follow_user"] if f["userid"] == "guide001"] == [
        "store_sh001"]


def test_no_welcome_code_when_the_contact_way_verifies(sandbox):
    way = sandbox.work_client().external_contact.add_contact_way(
        1, 2, user=["guide002"], state="vip", skip_verify=False)
    result = sandbox.simulate_work("add_customer", userid="guide002",
                                   config_id=way["config_id"], new_person={})

    event = parse_work_message(open_work(sandbox.callbacks.build(result.events[0])))

    assert (event.state, event.welcome_code, result["welcome_code"]) == ("vip", None, None)


def test_member_and_customer_deletions(sandbox):
    corp = sandbox.corps[DEMO_CORPID]
    ext_a, ext_b = [ext for _, ext in corp.by_member["guide001"]][:2]
    deleted = sandbox.simulate_work("member_deletes_customer", userid="guide001",
                                    external_userid=ext_a)
    blocked = sandbox.simulate_work("customer_deletes_member", userid="guide001",
                                    external_userid=ext_b)

    kinds = [parse_work_message(open_work(sandbox.callbacks.build(r.events[0]))).change_type
             for r in (deleted, blocked)]

    assert kinds == ["del_external_contact", "del_follow_user"]
    assert ext_a not in sandbox.work_client().external_contact.list("guide001")[
        "external_userid"]


def test_group_chat_events(sandbox):
    corp = sandbox.corps[DEMO_CORPID]
    customers = [ext for _, ext in corp.by_member["guide001"]][:3]
    created = sandbox.simulate_work("groupchat", action="create", owner="guide001",
                                    name="新品群", members=customers[:2])
    added = sandbox.simulate_work("groupchat", action="add_member", chat_id=created["chat_id"],
                                  members=customers[2:], join_scene=3)
    dismissed = sandbox.simulate_work("groupchat", action="dismiss",
                                      chat_id=created["chat_id"])

    events = [parse_work_message(open_work(sandbox.callbacks.build(r.events[0])))
              for r in (created, added, dismissed)]

    assert [(e.event, e.change_type, e.chat_id) for e in events] == [
        ("change_external_chat", kind, created["chat_id"])
        for kind in ("create", "update", "dismiss")]
    update = events[1]
    assert (update.update_detail, update.join_scene, update.mem_change_cnt) == (
        "add_member", "3", "1")
    assert update._data["MemChangeList"] == {"Item": customers[2]}
    assert update._data["CurMemVer"] == added["member_version"]


def test_corp_tag_console_change_event(sandbox):
    result = sandbox.simulate_work("corp_tag_console_change", action="create",
                                   group_name="会员等级", name="钻石")

    event = parse_work_message(open_work(sandbox.callbacks.build(result.events[0])))

    assert (event.event, event.change_type, event.tag_type, event.tag_id) == (
        "change_external_tag", "create", "tag", result["tag_ids"][0])
    names = [t["name"] for t in sandbox.work_client().external_contact.get_corp_tag_list()[
        "tag_group"][0]["tag"]]
    assert names == ["银卡", "金卡", "黑金", "钻石"]


def test_retries_keep_the_create_time(sandbox):
    answers = iter([(500, ""), (500, ""), (200, "success")])
    received = []

    def receiver(request):
        received.append(request)
        return next(answers)

    sandbox.callbacks.receiver = receiver
    result = sandbox.simulate_mp("subscribe", new_person={})
    sandbox.advance(5)
    deliveries = sandbox.callbacks.flush()

    bodies = [xmltodict.parse(open_mp(r))["xml"] for r in received]
    assert [d.outcome for d in deliveries] == ["http_error", "http_error", "ok"]
    assert {b["CreateTime"] for b in bodies} == {str(result.events[0].create_time)}
    assert len({r.query["nonce"] for r in received}) == 3
    assert sandbox.callbacks.events[result.events[0].id].delivered is True


def test_callback_timeout_fault_makes_the_app_see_a_duplicate(sandbox):
    received = []
    sandbox.callbacks.receiver = lambda request: (received.append(request) or 200, "success")
    sandbox.add_fault({"match": {"app": DEMO_MP_APPID}, "when": {"times": 1},
                       "action": {"type": "callback", "outcome": "timeout"}})
    sandbox.simulate_mp("subscribe", new_person={})

    deliveries = sandbox.callbacks.flush()

    assert [d.outcome for d in deliveries] == ["timeout", "ok"]
    assert len(received) == 2
    assert open_mp(received[0]) == open_mp(received[1])


def test_replay_sends_the_same_event_again(sandbox):
    sandbox.callbacks.receiver = lambda request: (200, "")
    sandbox.simulate_mp("subscribe", new_person={})
    (first,) = sandbox.callbacks.flush()

    (again,) = sandbox.callbacks.replay(first.id)

    assert open_mp(again.request) == open_mp(first.request)


class _App(BaseHTTPRequestHandler):
    """A stand-in for the app's webhook: checks signatures and echoes like the app must."""

    replies: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "msg_signature" in q:
            body = WORK_CRYPTO.check_signature(q["msg_signature"], q["timestamp"], q["nonce"],
                                               q["echostr"])
        else:
            check_signature(DEMO_MP_TOKEN, q["signature"], q["timestamp"], q["nonce"])
            body = q["echostr"]
        self._answer(body.encode() if isinstance(body, str) else body)

    def do_POST(self):
        q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        xml = self.rfile.read(int(self.headers["Content-Length"]))
        plain = MP_CRYPTO.decrypt_message(xml, q["msg_signature"], q["timestamp"], q["nonce"])
        self.replies.append(plain)
        reply = f"<xml><MsgType><![CDATA[text]]></MsgType><Content>hi {len(plain)}</Content></xml>"
        self._answer(MP_CRYPTO.encrypt_message(reply, q["nonce"], q["timestamp"]).encode())

    def _answer(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def app_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sync_delivery_over_http_and_an_encrypted_passive_reply(app_server):
    with sandbox_server("small", deliver="sync", callback_base_url=app_server) as sb:
        result = sb.simulate_mp("subscribe", new_person={})

        (delivery,) = result.deliveries
        assert (delivery.outcome, delivery.status) == ("ok", 200)
        assert delivery.request.url.startswith(
            f"{app_server}/wechat/mp/{DEMO_MP_APPID}/callback/?signature=")
        assert delivery.passive_reply.startswith("<xml><MsgType><![CDATA[text]]>")
        assert result["openid"] in _App.replies[-1]


def test_url_verification_for_both_platforms(app_server):
    with sandbox_server("small", callback_base_url=app_server) as sb:
        mp = sb.callbacks.verify_url("mp", DEMO_MP_APPID)
        work = sb.callbacks.verify_url("work", DEMO_CORPID)

        assert (mp["ok"], work["ok"]) == (True, True)
        assert len(mp["expected"]) == 19


def test_no_callback_url_is_recorded_without_retries():
    with sandbox_server("small", mp={DEMO_MP_APPID: {"callback_url": None}}) as sb:
        sb.simulate_mp("subscribe", new_person={})

        assert [d.outcome for d in sb.callbacks.flush()] == ["no_url"]
