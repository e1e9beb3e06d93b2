"""Fault rules: every action type and the match/when semantics (WECHAT.md §4.9)."""

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from integrations.sandbox.fixtures import DEMO_CORPID, DEMO_MP_APPID

TAGS = "/cgi-bin/tags/get"


def rule(action, path=TAGS, **when):
    return {"match": {"path": path}, "when": when, "action": action}


def outcome(call):
    try:
        call()
    except WeChatClientException as exc:
        return exc.errcode if exc.errcode is not None else f"http {exc.response.status_code}"
    except requests.RequestException as exc:
        return type(exc).__name__
    return "ok"


def test_errcode_with_an_overridden_errmsg(sandbox):
    sandbox.add_fault(rule({"type": "errcode", "errcode": 45009, "errmsg": "api freq out of "
                                                                             "limit"}))

    with pytest.raises(WeChatClientException) as info:
        sandbox.mp_client().tag.get()

    assert info.value.errcode == 45009
    assert info.value.errmsg.startswith("api freq out of limit rid: ")


def test_expire_token_answers_42001_and_stays_expired(sandbox):
    client = sandbox.mp_client(auto_retry=False)
    client.tag.get()
    sandbox.add_fault(rule({"type": "expire_token"}, times=1))

    assert [outcome(client.tag.get), outcome(client.tag.get)] == [42001, 42001]
    client.fetch_access_token()
    assert outcome(client.tag.get) == "ok"


def test_revoke_all_tokens_per_platform(sandbox):
    mp = sandbox.mp_client(auto_retry=False)
    work = sandbox.work_client(auto_retry=False)
    sandbox.add_fault({"match": {"app": DEMO_MP_APPID, "path": TAGS}, "when": {"times": 1},
                       "action": {"type": "revoke_all_tokens"}})
    sandbox.add_fault({"match": {"app": DEMO_CORPID, "not_path": ["/cgi-bin/gettoken"]},
                       "when": {"times": 1}, "action": {"type": "revoke_all_tokens"}})

    assert outcome(mp.tag.get) == 40001
    assert outcome(work.external_contact.get_follow_user_list) == 40014


def test_http_status_and_reset_connection(sandbox):
    client = sandbox.mp_client()
    sandbox.add_fault(rule({"type": "http", "status": 503, "body": ""}, times=1))
    sandbox.add_fault(rule({"type": "reset_connection"}, after_calls=1, times=1))

    assert [outcome(client.tag.get) for _ in range(3)] == ["http 503", "ConnectionError", "ok"]


def test_delay_triggers_the_client_read_timeout(sandbox):
    client = sandbox.mp_client(timeout=(1, 0.05))
    client.fetch_access_token()
    sandbox.add_fault(rule({"type": "delay", "ms": 300}, times=1))

    assert [outcome(client.tag.get), outcome(client.tag.get)] == ["ReadTimeout", "ok"]


def test_truncated_json_comes_back_as_a_raw_response(sandbox):
    client = sandbox.mp_client()
    client.fetch_access_token()
    sandbox.add_fault(rule({"type": "truncate_json"}, times=1))
    sandbox.add_fault(rule({"type": "truncate_json", "mode": "early_close"}, after_calls=1,
                           times=1))

    short = client.tag.get()
    assert isinstance(short, requests.Response)  # wechatpy's behaviour for a non-JSON body
    assert outcome(client.tag.get) == "ChunkedEncodingError"


def test_drop_field_trips_iter_followers(sandbox):
    sandbox.add_fault(rule({"type": "drop_field", "field": "next_openid"},
                           path="/cgi-bin/user/get"))

    with pytest.raises(KeyError, match="next_openid"):
        list(sandbox.mp_client().user.iter_followers())


def test_drop_field_takes_a_dotted_path(sandbox):
    sandbox.add_fault(rule({"type": "drop_field", "field": "data.openid"},
                           path="/cgi-bin/user/get"))

    assert sandbox.mp_client().user.get_followers()["data"] == {}


def test_after_calls_times_and_param_matching(sandbox):
    client = sandbox.mp_client()
    sandbox.add_fault({"match": {"path": "/cgi-bin/user/get", "param": {"next_openid": "*"}},
                       "when": {"after_calls": 1, "times": 2},
                       "action": {"type": "errcode", "errcode": -1}})
    cursor = sandbox.openid(0)

    results = [outcome(lambda: client.user.get_followers(cursor)) for _ in range(4)]

    assert outcome(client.user.get_followers) == "ok"
    assert results == ["ok", -1, -1, "ok"]


def test_between_window_uses_the_sandbox_clock(sandbox):
    client = sandbox.mp_client()
    sandbox.add_fault(rule({"type": "errcode", "errcode": -1},
                           between={"from": "2025-01-01T10:00:00+08:00"}))

    before = outcome(client.tag.get)
    sandbox.advance(3600)

    assert (before, outcome(client.tag.get)) == ("ok", -1)


def test_churn_and_advance_clock_actions_let_the_call_proceed(sandbox):
    sandbox.add_fault(rule({"type": "churn", "ops": [{"op": "subscribe", "count": 2}]},
                           path="/cgi-bin/user/get", times=1))
    sandbox.add_fault(rule({"type": "advance_clock", "seconds": 90}, times=1))
    client = sandbox.mp_client()
    before = sandbox.clock.ts()

    page = client.user.get_followers()
    client.tag.get()

    assert page["total"] == 22
    assert sandbox.clock.ts() == before + 90
    assert [e.kind for e in sandbox.callbacks.pending()] == ["subscribe", "subscribe"]


def test_every_match_is_logged_with_its_rule_id(sandbox):
    sandbox.add_fault({"id": "busy", **rule({"type": "errcode", "errcode": -1}, times=1)})
    client = sandbox.mp_client()
    outcome(client.tag.get)
    outcome(client.tag.get)

    assert [(c["errcode"], c["rule_ids"]) for c in sandbox.calls(path=TAGS)] == [
        (-1, ["busy"]), (0, [])]
    assert sandbox.faults.rules[0].as_dict()["fired"] == 1


def test_faults_over_the_control_api(sandbox):
    url = f"{sandbox.url}/__fake__/faults"
    created = requests.post(url, json=[{"id": "a", **rule({"type": "errcode", "errcode": -1})},
                                       {"id": "b", **rule({"type": "delay", "ms": 1})}]).json()
    listed = requests.get(url).json()
    deleted = requests.delete(f"{url}/a").json()
    bad = requests.post(url, json={"action": {"type": "explode"}})
    cleared = requests.delete(url).json()

    assert [r["id"] for r in created] == [r["id"] for r in listed] == ["a", "b"]
    assert deleted == {"deleted": True}
    assert (bad.status_code, bad.json()["error"]) == (400, "unknown action type 'explode'")
    assert cleared == {"deleted": "all"}
    assert sandbox.faults.rules == []


def test_in_process_transport_raises_like_a_socket(local_sandbox):
    client = local_sandbox.mp_client(timeout=(1, 0.05))
    client.fetch_access_token()
    local_sandbox.add_fault(rule({"type": "delay", "ms": 200}, times=1))
    local_sandbox.add_fault(rule({"type": "reset_connection"}, after_calls=1, times=1))

    assert [outcome(client.tag.get) for _ in range(3)] == [
        "ReadTimeout", "ConnectionError", "ok"]
