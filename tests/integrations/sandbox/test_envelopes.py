"""Wire-level snapshots of the envelopes (WECHAT.md §4.3) and host resolution (§4.2)."""

import json
import re

import pytest
import requests

from integrations.sandbox import FakeWeChat
from integrations.sandbox.fixtures import (
    DEMO_CONTACT_SECRET,
    DEMO_CORPID,
    DEMO_MP_APPID,
    DEMO_MP_SECRET,
)

MP = "api.weixin.qq.com"
WORK = "qyapi.weixin.qq.com"
MP_ERROR = re.compile(r'^\{"errcode":(-?\d+),"errmsg":"(.*) rid: [0-9a-f]{8}-[0-9a-f]{8}-'
                      r'[0-9a-f]{8}"\}$')
WORK_HINT = re.compile(r"^(.*), hint: \[\d{10}_\d{2}_[0-9a-f]{32}\], from ip: 127\.0\.0\.1, "
                       r"more info at https://open\.work\.weixin\.qq\.com/devtool/query\?e="
                       r"(-?\d+)$")


@pytest.fixture
def core():
    sandbox = FakeWeChat("small", followers=2)
    yield sandbox
    sandbox.close()


def mp_token(core) -> str:
    _, _, body = core.handle("GET", MP, "/cgi-bin/token", {
        "grant_type": "client_credential", "appid": DEMO_MP_APPID, "secret": DEMO_MP_SECRET})
    return json.loads(body)["access_token"]


def work_token(core) -> str:
    _, _, body = core.handle("GET", WORK, "/cgi-bin/gettoken",
                             {"corpid": DEMO_CORPID, "corpsecret": DEMO_CONTACT_SECRET})
    return json.loads(body)["access_token"]


def test_mp_error_envelope(core):
    status, headers, body = core.handle("GET", MP, "/cgi-bin/user/get", {"access_token": "x"})

    match = MP_ERROR.match(body.decode())
    assert status == 200
    assert dict(headers) == {"Content-Type": "application/json; encoding=utf-8"}
    assert match.group(1) == "40001"
    assert match.group(2).startswith("invalid credential, access_token is invalid or not latest")


def test_mp_read_success_has_no_errcode_and_the_last_page_has_no_data(core):
    token = mp_token(core)
    first = core.handle("GET", MP, "/cgi-bin/user/get", {"access_token": token})[2]
    a, b = core.openid(0), core.openid(1)
    last = core.handle("GET", MP, "/cgi-bin/user/get",
                       {"access_token": token, "next_openid": b})[2]

    assert first == (f'{{"total":2,"count":2,"data":{{"openid":["{a}","{b}"]}},'
                     f'"next_openid":"{b}"}}').encode()
    assert last == b'{"total":2,"count":0,"next_openid":""}'


def test_mp_write_success_and_raw_utf8(core):
    token = mp_token(core)
    update = core.handle("POST", MP, "/cgi-bin/tags/update", {"access_token": token}, {},
                         json.dumps({"tag": {"id": 100, "name": "贵宾"}}))[2]
    tags = core.handle("GET", MP, "/cgi-bin/tags/get", {"access_token": token})[2]

    assert update == b'{"errcode":0,"errmsg":"ok"}'
    assert tags.startswith('{"tags":[{"id":2,"name":"星标组","count":0}'.encode())


def test_work_error_envelope_and_headers(core):
    status, headers, body = core.handle("GET", WORK, "/cgi-bin/externalcontact/list",
                                        {"access_token": "x", "userid": "guide001"})
    payload = json.loads(body)
    headers = dict(headers)

    assert status == 200
    assert list(payload) == ["errcode", "errmsg"]
    assert payload["errcode"] == 40014
    match = WORK_HINT.match(payload["errmsg"])
    assert match.groups() == ("invalid access_token", "40014")
    assert headers == {"Content-Type": "application/json; charset=UTF-8",
                       "error-code": "40014", "error-msg": payload["errmsg"]}


def test_work_success_envelope(core):
    body = core.handle("GET", WORK, "/cgi-bin/externalcontact/get_follow_user_list",
                       {"access_token": work_token(core)})[2]

    assert body == (b'{"errcode":0,"errmsg":"ok","follow_user":["guide001","guide002",'
                    b'"guide003"]}')


def test_unknown_paths_and_hosts(core):
    mp = core.handle("GET", MP, "/cgi-bin/nope", {})
    work = core.handle("GET", WORK, "/cgi-bin/nope", {})
    elsewhere = core.handle("GET", "example.com", "/cgi-bin/user/get", {})

    assert mp[0] == 200
    assert MP_ERROR.match(mp[2].decode()).groups() == ("40066", "invalid url")
    assert (work[0], work[2]) == (404, b"")
    assert elsewhere[0] == 404


def test_the_same_path_means_different_things_on_each_host(core):
    member = json.loads(core.handle("GET", WORK, "/cgi-bin/user/get", {
        "access_token": work_token(core), "userid": "guide001"})[2])
    followers = json.loads(core.handle("GET", MP, "/cgi-bin/user/get",
                                       {"access_token": mp_token(core)})[2])

    assert member["userid"] == "guide001"
    assert followers["total"] == 2


def test_host_resolution_order(sandbox):
    def total(url, **headers):
        return requests.get(url, params={"access_token": "x"}, headers=headers).json()

    by_header = total(f"{sandbox.url}/cgi-bin/user/get", **{"X-Original-Host": MP})
    by_segment = total(f"{sandbox.url}/{MP}/cgi-bin/user/get")
    header_wins = total(f"{sandbox.url}/{MP}/cgi-bin/user/get", **{"X-Original-Host": WORK})
    by_host = total(f"{sandbox.url}/cgi-bin/user/get", Host=MP)

    assert by_header["errcode"] == by_segment["errcode"] == by_host["errcode"] == 40001
    assert header_wins["errcode"] == 40014


def test_order_of_checks(core):
    core.add_fault({"id": "pre", "match": {"path": "/cgi-bin/tags/get"},
                    "when": {"phase": "pre_auth", "times": 1},
                    "action": {"type": "errcode", "errcode": -1}})
    core.add_fault({"id": "post", "match": {"path": "/cgi-bin/tags/get"},
                    "when": {"phase": "post_auth"}, "action": {"type": "errcode",
                                                               "errcode": 45011}})
    token = mp_token(core)

    def code(**query):
        body = json.loads(core.handle("GET", MP, "/cgi-bin/tags/get", query)[2])
        return body.get("errcode")

    assert code(access_token="bad") == -1  # 1. pre-auth rules come before the token
    assert code(access_token="bad") == 40001  # 2. the token before post-auth rules
    core.set_quota(scope=DEMO_MP_APPID, endpoint="tags/get", daily=0)
    assert code(access_token=token) == 45009  # 3. quotas before post-auth rules
    core.set_quota(scope=DEMO_MP_APPID, endpoint="tags/get", daily=100)
    assert code(access_token=token) == 45011  # 4. post-auth rules before the endpoint
    assert [c["rule_ids"] for c in core.calls(path="/cgi-bin/tags/get")] == [
        ["pre"], [], [], ["post"]]


def test_validation_runs_after_post_auth_rules(core):
    token = mp_token(core)
    bad = json.dumps({"user_list": []})
    before = json.loads(core.handle("POST", MP, "/cgi-bin/user/info/batchget",
                                    {"access_token": token}, {}, bad)[2])
    core.add_fault({"match": {"path": "/cgi-bin/user/info/batchget"},
                    "action": {"type": "errcode", "errcode": -1}})
    after = json.loads(core.handle("POST", MP, "/cgi-bin/user/info/batchget",
                                   {"access_token": token}, {}, bad)[2])

    assert (before["errcode"], after["errcode"]) == (40032, -1)


def test_malformed_json_body_is_47001(core):
    body = json.loads(core.handle("POST", MP, "/cgi-bin/tags/create",
                                  {"access_token": mp_token(core)}, {}, b"{nope")[2])

    assert body["errcode"] == 47001
