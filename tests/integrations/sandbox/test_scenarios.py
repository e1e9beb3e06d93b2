"""The built-in scenarios of WECHAT.md §4.9, each with the behaviour the app must show."""

import pytest
import requests
from wechatpy.exceptions import APILimitedException, WeChatClientException

from integrations.sandbox.fixtures import DEMO_CORPID, DEMO_MP_APPID
from integrations.sandbox.testing import sandbox_server

TOKEN_ERRORS = (40001, 40014, 42001)


def token_fetches(sb) -> int:
    return len([c for c in sb.calls() if c["path"] in ("/cgi-bin/token", "/cgi-bin/gettoken")])


def call_with_one_refresh(client, call):
    """The retry policy of WECHAT.md §2.6: on a token error refetch once, retry once."""
    try:
        return call()
    except WeChatClientException as exc:
        if exc.errcode not in TOKEN_ERRORS:
            raise
        client.fetch_access_token()
        return call()


def test_token_expiry_mid_sync_costs_exactly_one_token_fetch():
    with sandbox_server("small", followers=7, page_size=2) as sb:
        sb.scenario("token_expiry_mid_sync", app=DEMO_MP_APPID, after_pages=2)
        client = sb.mp_client()

        openids = list(client.user.iter_followers())

        assert openids == sb.openids(range(7))
        assert token_fetches(sb) == 2
        pages = [c for c in sb.calls() if c["path"] == "/cgi-bin/user/get"]
        assert [c["errcode"] for c in pages] == [0, 0, 42001, 0, 0, 0]


def test_token_expiry_mid_sync_on_wecom_batches(sandbox):
    sandbox.scenario("token_expiry_mid_sync", app=DEMO_CORPID, after_pages=1)
    client = sandbox.work_client()
    corp = sandbox.corps[DEMO_CORPID]

    items = list(client.external_contact.gen_all_by_user("guide001", limit=3))

    assert [i["external_contact"]["external_userid"] for i in items] == [
        ext for _, ext in corp.by_member["guide001"]]
    assert token_fetches(sandbox) == 2


def test_token_superseded_by_another_server(sandbox):
    client = sandbox.mp_client()
    client.tag.get()

    sandbox.scenario("token_superseded", app=DEMO_MP_APPID)
    in_grace = client.tag.get()
    sandbox.advance(301)
    after_grace = client.tag.get()

    assert in_grace == after_grace
    assert token_fetches(sandbox) == 2
    assert [c["errcode"] for c in sandbox.calls(path="/cgi-bin/tags/get")] == [
        0, 0, 40001, 0]


def test_persistent_invalid_token_fails_fast_with_a_capped_retry(sandbox):
    sandbox.scenario("persistent_invalid_token", app=DEMO_MP_APPID, n=1000)
    client = sandbox.mp_client(auto_retry=False)

    with pytest.raises(WeChatClientException) as info:
        call_with_one_refresh(client, client.tag.get)

    assert info.value.errcode == 40001
    assert len(sandbox.calls(path="/cgi-bin/tags/get")) == 2
    assert token_fetches(sandbox) == 2


def test_wechatpy_auto_retry_needs_one_token_fetch_per_injected_error(sandbox):
    sandbox.scenario("persistent_invalid_token", app=DEMO_MP_APPID, n=3)

    sandbox.mp_client().tag.get()

    assert token_fetches(sandbox) == 4


def test_rate_limited_mp_minute_quota(sandbox):
    sandbox.scenario("rate_limited", endpoint="user/info", per_minute=2, app=DEMO_MP_APPID)
    client = sandbox.mp_client()
    openid = sandbox.openid(0)
    client.user.get(openid)
    client.user.get(openid)

    with pytest.raises(WeChatClientException) as info:
        client.user.get(openid)
    sandbox.advance(60)

    assert info.value.errcode == 45011
    assert not isinstance(info.value, APILimitedException)
    assert client.user.get(openid)["subscribe"] == 1


def test_rate_limited_wecom_answers_45009(sandbox):
    sandbox.scenario("rate_limited", endpoint="externalcontact/list", per_minute=1)
    client = sandbox.work_client()
    client.external_contact.list("guide001")

    with pytest.raises(APILimitedException) as info:
        client.external_contact.list("guide001")

    assert info.value.errcode == 45009


def test_daily_quota_exhausted_until_the_day_rolls(sandbox):
    sandbox.scenario("daily_quota_exhausted", endpoint="user/get", app=DEMO_MP_APPID)
    client = sandbox.mp_client()

    with pytest.raises(APILimitedException):
        client.user.get_followers()
    sandbox.set_clock("2025-01-02T00:00:01+08:00")

    assert client.user.get_followers()["total"] == 20


def test_system_busy_first_n_then_success(sandbox):
    sandbox.scenario("system_busy", endpoint="user/info/batchget", first=2)
    client = sandbox.mp_client()
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(len(client.user.get_batch(sandbox.openids([0, 1]))))
        except WeChatClientException as exc:
            outcomes.append(exc.errcode)

    assert outcomes == [-1, -1, 2]


def busy_pattern(seed: int) -> list:
    with sandbox_server("small", seed=seed) as sb:
        sb.scenario("system_busy", endpoint="tags/get", p=0.5)
        client = sb.mp_client()
        outcomes = []
        for _ in range(12):
            try:
                client.tag.get()
                outcomes.append("ok")
            except WeChatClientException as exc:
                outcomes.append(exc.errcode)
        return outcomes


def test_system_busy_probability_repeats_with_the_seed():
    first = busy_pattern(3)

    assert first == busy_pattern(3)
    assert set(first) == {"ok", -1}


def flaky_outcomes(seed: int) -> list[str]:
    with sandbox_server("small", seed=seed) as sb:
        client = sb.mp_client()
        client.fetch_access_token()
        sb.scenario("flaky_network", p=0.6, delay_ms=20)
        outcomes = []
        for _ in range(20):
            try:
                client.tag.get()
                outcomes.append("ok")
            except WeChatClientException as exc:
                outcomes.append(f"http {exc.response.status_code}")
            except requests.ConnectionError:
                outcomes.append("reset")
        return outcomes


def test_flaky_network_mixes_502_resets_and_delays_reproducibly():
    first = flaky_outcomes(5)

    assert first == flaky_outcomes(5)
    assert {"ok", "http 502", "reset"} <= set(first)


def test_welcome_code_expired(sandbox):
    added = sandbox.simulate_work("add_customer", userid="guide001", new_person={})
    sandbox.scenario("welcome_code_expired")

    with pytest.raises(WeChatClientException) as info:
        sandbox.work_client().external_contact.send_welcome_msg(
            {"welcome_code": added["welcome_code"], "text": {"content": "欢迎"}})

    assert info.value.errcode == 41050
    assert sandbox.outbox("welcome") == []


def churned_sync(paging_mode: str) -> tuple[list[str], list[str], object]:
    with sandbox_server("small", followers=9, page_size=3,
                        mp={DEMO_MP_APPID: {"paging_mode": paging_mode}}) as sb:
        sb.scenario("follower_churn_during_sync", app=DEMO_MP_APPID, after_pages=1,
                    unsubscribe=2, subscribe=2, where="before_cursor")
        seen = list(sb.mp_client().user.iter_followers())
        events = [e.kind for e in sb.callbacks.pending()]
        return seen, sb.openids(range(9)), events


def test_follower_churn_during_sync_keeps_later_pages_in_place():
    seen, generated, events = churned_sync("keyset")

    assert len(seen) == len(set(seen)) == 9 + 2
    assert seen[:9] == generated  # the first page went out before the churn
    assert sorted(events) == ["subscribe", "subscribe", "unsubscribe", "unsubscribe"]


def test_naive_offset_paging_skips_followers_under_churn():
    seen, generated, _ = churned_sync("index_offset")

    assert set(generated[3:]) - set(seen)  # two followers after the cursor were skipped
