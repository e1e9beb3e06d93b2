"""The control API under /__fake__/ over HTTP, and its Python twins."""

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from integrations.sandbox.fixtures import DEMO_CORPID, DEMO_MP_APPID


@pytest.fixture
def control(sandbox):
    base = f"{sandbox.url}/__fake__/"

    def call(method, endpoint, body=None, **params):
        response = requests.request(method, base + endpoint, json=body, params=params)
        return response.status_code, response.json()

    return call


def test_health_state_and_persons(control):
    assert control("GET", "health")[1]["mp_apps"] == [DEMO_MP_APPID]
    state = control("GET", "state")[1]
    detail = control("GET", "state", section="work")[1]
    status, persons = control("GET", "persons", limit=2)

    assert state["mp"][DEMO_MP_APPID]["subscribed"] == 20
    assert state["work"][DEMO_CORPID]["members"] == 4
    assert [m["userid"] for m in detail["work"][DEMO_CORPID]["member_list"]][:2] == [
        "guide001", "guide002"]
    assert "mp" not in detail
    assert [p["person"] for p in persons] == ["p0", "p1"]
    assert persons[0]["openids"] == {DEMO_MP_APPID: persons[0]["openids"][DEMO_MP_APPID]}


def test_reset_and_seed(sandbox, control):
    client = sandbox.mp_client(auto_retry=False)
    client.tag.get()

    control("POST", "reset", {"seed": 99})
    with pytest.raises(WeChatClientException) as info:
        client.tag.get()
    control("POST", "seed", {"fixture": "small", "overrides": {"followers": 3}})

    assert info.value.errcode == 40001  # tokens do not survive a reset
    assert sandbox.seed == 7
    assert control("GET", "state")[1]["mp"][DEMO_MP_APPID]["subscribed"] == 3


def test_seed_with_a_full_fixture_document(control):
    fixture = {"seed": 3, "mp": [{"appid": "wx1111111111111111", "followers": {"count": 4}}]}

    health = control("POST", "seed", fixture)[1]

    assert (health["seed"], health["mp_apps"], health["corps"]) == (
        3, ["wx1111111111111111"], [])


def test_clock(control):
    assert control("GET", "clock")[1]["now"] == "2025-01-01T09:00:00+08:00"
    assert control("POST", "clock", {"advance_s": 90})[1]["now"] == "2025-01-01T09:01:30+08:00"
    assert control("POST", "clock", {"set": "2025-06-01T00:00:00+08:00"})[1]["ts"] == 1748707200


def test_tokens_expire_and_revoke(sandbox, control):
    mp = sandbox.mp_client(auto_retry=False)
    work = sandbox.work_client(auto_retry=False)
    mp.tag.get()
    work.external_contact.get_follow_user_list()

    assert control("POST", "tokens/expire", {"app": DEMO_MP_APPID})[1] == {"tokens": 1}
    control("POST", "tokens/expire", {"app": f"{DEMO_CORPID}:contact", "mode": "revoke"})

    codes = []
    for call in (mp.tag.get, work.external_contact.get_follow_user_list):
        with pytest.raises(WeChatClientException) as info:
            call()
        codes.append(info.value.errcode)
    assert codes == [42001, 40014]


def test_calls_log_and_outbox(sandbox, control):
    client = sandbox.mp_client()
    client.tag.get()
    client.message.send_template(sandbox.openid(0), "TPL_COUPON", {
        "thing1": {"value": "a"}, "amount2": {"value": "b"}, "time3": {"value": "c"}})

    _, calls = control("GET", "calls", path="/cgi-bin/tags/get")
    _, later = control("GET", "calls", since_id=calls[0]["id"])
    _, outbox = control("GET", "outbox", kind="template")

    assert [(c["method"], c["host"], c["status"]) for c in calls] == [
        ("GET", "api.weixin.qq.com", 200)]
    assert "access_token" not in calls[0]["query"]
    assert [c["path"] for c in later] == ["/cgi-bin/message/template/send"]
    assert [o["touser"] for o in outbox] == [sandbox.openid(0)]


def test_simulations_over_http(control):
    status, subscribed = control("POST", f"mp/{DEMO_MP_APPID}/simulate/subscribe",
                                 {"new_person": {"nickname": "新朋友"}})
    _, added = control("POST", f"work/{DEMO_CORPID}/simulate/add_customer",
                       {"userid": "guide001", "person": subscribed["person"]})
    _, chat = control("POST", f"work/{DEMO_CORPID}/simulate/groupchat",
                      {"action": "create", "owner": "guide001",
                       "members": [added["external_userid"]]})
    bad_status, bad = control("POST", f"work/{DEMO_CORPID}/simulate/add_customer",
                              {"userid": "ghost"})
    _, pending = control("GET", "callbacks/pending")

    assert status == 200
    assert [e["kind"] for e in subscribed["events"]] == ["subscribe"]
    assert subscribed["deliveries"] == []  # the small fixture queues callbacks
    assert added["events"][0]["fields"]["ExternalUserID"] == added["external_userid"]
    assert chat["chat_id"].startswith("wr")
    assert (bad_status, bad["error"]) == (400, "no active member 'ghost'")
    assert [e["kind"] for e in pending] == [
        "subscribe", "change_external_contact/add_external_contact",
        "change_external_chat/create"]


def test_callbacks_build_deliver_replay_and_config(sandbox, control):
    received = []
    sandbox.callbacks.receiver = lambda request: (received.append(request) or 200, "success")
    _, result = control("POST", f"mp/{DEMO_MP_APPID}/simulate/subscribe", {"person": "p30"})
    event_id = result["events"][0]["id"]

    _, built = control("GET", f"callbacks/{event_id}/build")
    _, delivered = control("POST", f"callbacks/{event_id}/deliver")
    _, replayed = control("POST", f"callbacks/{delivered[0]['id']}/replay")
    _, listing = control("GET", "callbacks")
    _, mode = control("POST", "callbacks/config", {"deliver": "sync", "app": DEMO_MP_APPID,
                                                   "url": "http://app.test/cb"})

    assert built["path"].startswith(f"/wechat/mp/{DEMO_MP_APPID}/callback/?signature=")
    assert [d["outcome"] for d in delivered + replayed] == ["ok", "ok"]
    assert len(received) == 2
    assert [d["event_id"] for d in listing["deliveries"]] == [event_id, event_id]
    assert mode == {"mode": "sync"}
    assert sandbox.mp_apps[DEMO_MP_APPID].callback_url == "http://app.test/cb"


def test_verify_url_and_churn(sandbox, control):
    sandbox.callbacks.receiver = lambda request: (200, request.expected)

    _, verified = control("POST", "verify_url", {"app": DEMO_CORPID})
    _, churned = control("POST", "churn", {"app": DEMO_MP_APPID,
                                           "ops": [{"op": "unsubscribe", "count": 2}]})

    assert verified["ok"] is True
    assert [e["kind"] for e in churned["events"]] == ["unsubscribe", "unsubscribe"]
    assert sandbox.mp_apps[DEMO_MP_APPID].followers.subscribed_count == 18


def test_scenario_and_quota_endpoints(sandbox, control):
    _, scenario = control("POST", "scenario", {"name": "system_busy",
                                               "args": {"endpoint": "tags/get", "first": 1}})
    _, limits = control("POST", "quota", {"scope": DEMO_MP_APPID, "endpoint": "user/info",
                                          "daily": 5, "concurrency_limit": 3})
    sandbox.mp_client().user.get(sandbox.openid(0))
    _, usage = control("GET", "quota")
    unknown = control("POST", "scenario", {"name": "meteor_strike"})

    assert scenario["rules"][0]["action"] == {"type": "errcode", "errcode": -1}
    assert limits["concurrency_limit"] == 3
    assert {"scope": DEMO_MP_APPID, "endpoint": "user/info", "window": "day",
            "count": 1} in usage["usage"]
    assert unknown[0] == 400


def test_unknown_control_path_and_the_demo_page(sandbox, control):
    page = requests.get(f"{sandbox.url}/__fake__/ui")

    assert control("GET", "nothing-here")[0] == 404
    assert page.status_code == 200
    assert "WeChat sandbox" in page.text


def test_control_api_answers_on_any_host_prefix(sandbox):
    health = requests.get(f"{sandbox.url}/qyapi.weixin.qq.com/__fake__/health").json()

    assert health["ok"] is True
