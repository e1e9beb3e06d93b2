"""A million followers: generated from (seed, index), only deltas stored (the benchmark
fixture of the app's follower sync)."""

import json
import time
import tracemalloc

import pytest

from integrations.sandbox import FakeWeChat
from integrations.sandbox.fixtures import DEMO_MP_APPID, DEMO_MP_SECRET
from integrations.sandbox.mp import user_info_json, user_info_payload
from integrations.sandbox.wire import dumps

MP = "api.weixin.qq.com"
MILLION = 1_000_000


@pytest.fixture(scope="module")
def big():
    sandbox = FakeWeChat("demo", followers=MILLION, work=[],
                         mp={DEMO_MP_APPID: {"tags": [{"name": "VIP", "every": 20}]}})
    _, _, body = sandbox.handle("GET", MP, "/cgi-bin/token", {
        "grant_type": "client_credential", "appid": DEMO_MP_APPID, "secret": DEMO_MP_SECRET})
    sandbox.token = json.loads(body)["access_token"]
    yield sandbox
    sandbox.close()


def get(sandbox, path, **query):
    return json.loads(sandbox.handle("GET", MP, path, {"access_token": sandbox.token,
                                                       **query})[2])


def test_a_million_followers_load_fast_and_small():
    tracemalloc.start()
    started = time.perf_counter()
    sandbox = FakeWeChat("demo", followers=MILLION, work=[])
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert elapsed < 1
    assert peak < 30 * 2**20
    assert sandbox.mp_apps[DEMO_MP_APPID].followers.subscribed_count == MILLION


def test_paging_through_a_million(big):
    pages, count, cursor, last = 0, 0, "", None
    while True:
        page = get(big, "/cgi-bin/user/get", next_openid=cursor)
        pages += 1
        if "data" not in page:
            break
        count += page["count"]
        last = page["data"]["openid"][-1]
        cursor = page["next_openid"]

    assert (pages, count) == (101, MILLION)
    assert page == {"total": MILLION, "count": 0, "next_openid": ""}
    assert last == big.openid(MILLION - 1)


def test_deltas_at_scale_keep_counts_and_cursors(big):
    middle = big.openid(500_000)
    big.simulate_mp("unsubscribe", person=500_000)
    big.simulate_mp("unsubscribe", person=10)

    after = get(big, "/cgi-bin/user/get", next_openid=middle)
    tags = {t["id"]: t["count"] for t in get(big, "/cgi-bin/tags/get")["tags"]}

    assert after["total"] == MILLION - 2
    assert after["data"]["openid"][0] == big.openid(500_001)
    assert tags[100] == MILLION // 20 - 1  # person 500000 was a VIP
    assert len(big.mp_apps[DEMO_MP_APPID].followers.delta) == 2


def test_hand_rendered_user_info_matches_json_dumps(big):
    app = big.mp_apps[DEMO_MP_APPID]
    app.followers.set_remark(7, 'quote " back\\slash 中文\n')
    app.followers.set_tags(7, [100, 2])
    people = [0, 7, 999_999, 10]
    profiles = big.persons.profiles(people)
    rows = app.followers.rows(people)

    for person, (language, unionid), row in zip(people, profiles, rows, strict=True):
        openid = big.openid(person)
        assert user_info_json(big, app, person, openid, language, unionid, row) == dumps(
            user_info_payload(big, app, person, openid, language, unionid)).decode()


def test_batchget_throughput_in_process(big):
    openids = [big.openid(i) for i in range(300_000, 300_100)]
    body = json.dumps({"user_list": [{"openid": o, "lang": "zh_CN"} for o in openids]})
    query = {"access_token": big.token}
    started = time.perf_counter()
    for _ in range(200):
        status, _, raw = big.handle("POST", MP, "/cgi-bin/user/info/batchget", query, {}, body)
    per_call = (time.perf_counter() - started) / 200

    assert status == 200
    assert [u["openid"] for u in json.loads(raw)["user_info_list"]] == openids
    assert per_call < 0.005
