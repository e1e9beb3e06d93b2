"""Quotas and rate limits (WECHAT.md §4.8)."""

import threading

import pytest
import requests
from wechatpy.exceptions import APILimitedException, WeChatClientException

from integrations.sandbox.fixtures import DEMO_CONTACT_SECRET, DEMO_CORPID, DEMO_MP_APPID
from integrations.sandbox.quota import MP_DAILY


def test_defaults_follow_the_platform_table():
    assert (MP_DAILY["token"], MP_DAILY["user/get"], MP_DAILY["user/info"]) == (
        2000, 500, 5_000_000)


def test_daily_quota_then_clear_quota(sandbox):
    sandbox.set_quota(scope=DEMO_MP_APPID, endpoint="user/get", daily=2)
    client = sandbox.mp_client()
    client.user.get_followers()
    client.user.get_followers()

    with pytest.raises(APILimitedException):
        client.user.get_followers()
    client.post("clear_quota", data={"appid": DEMO_MP_APPID})

    assert client.user.get_followers()["total"] == 20


def test_clear_quota_ten_times_a_month(sandbox):
    client = sandbox.mp_client()
    for _ in range(10):
        client.post("clear_quota", data={"appid": DEMO_MP_APPID})

    with pytest.raises(WeChatClientException) as info:
        client.post("clear_quota", data={"appid": DEMO_MP_APPID})

    assert info.value.errcode == 48006


def test_day_counters_turn_over_at_midnight_shanghai(sandbox):
    sandbox.set_quota(scope=DEMO_MP_APPID, endpoint="user/get", daily=1)
    client = sandbox.mp_client()
    client.user.get_followers()
    sandbox.set_clock("2025-01-01T23:59:59+08:00")

    with pytest.raises(APILimitedException):
        client.user.get_followers()
    sandbox.advance(1)

    assert client.user.get_followers()["total"] == 20


def test_wecom_gettoken_is_rate_limited_per_secret(sandbox):
    url = f"{sandbox.url}/qyapi.weixin.qq.com/cgi-bin/gettoken"
    params = {"corpid": DEMO_CORPID, "corpsecret": DEMO_CONTACT_SECRET}

    codes = [requests.get(url, params=params).json()["errcode"] for _ in range(31)]
    sandbox.advance(60)

    assert codes == [0] * 30 + [45009]
    assert requests.get(url, params=params).json()["errcode"] == 0


def test_wecom_per_minute_limit(sandbox):
    sandbox.set_quota(scope=DEMO_CORPID, endpoint="externalcontact/list", per_minute=1)
    client = sandbox.work_client()
    client.external_contact.list("guide001")

    with pytest.raises(APILimitedException):
        client.external_contact.list("guide001")


def test_wecom_concurrency_limit(sandbox):
    sandbox.quotas.concurrency_limit = 1
    sandbox.add_fault({"match": {"path": "/cgi-bin/externalcontact/list"},
                       "action": {"type": "delay", "ms": 600}})
    clients = [sandbox.work_client(), sandbox.work_client()]
    for client in clients:
        client.fetch_access_token()
    codes = []

    def call(client):
        try:
            client.external_contact.list("guide001")
            codes.append(0)
        except WeChatClientException as exc:
            codes.append(exc.errcode)

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    threads[0].start()
    threading.Event().wait(0.1)
    threads[1].start()
    for thread in threads:
        thread.join()

    assert codes == [45033, 0]
