"""Same seed + same calls -> byte-identical responses and callback bodies (§4.13 (4))."""

import json

from integrations.sandbox import FakeWeChat
from integrations.sandbox.fixtures import (
    DEMO_CONTACT_SECRET,
    DEMO_CORPID,
    DEMO_MP_APPID,
    DEMO_MP_SECRET,
)

MP = "api.weixin.qq.com"
WORK = "qyapi.weixin.qq.com"


def transcript(seed: int) -> list[bytes]:
    sandbox = FakeWeChat("small", seed=seed)
    out: list[bytes] = []

    def call(method, host, path, query=None, body=None):
        raw = json.dumps(body, ensure_ascii=False) if body is not None else None
        response = sandbox.handle(method, host, path, query or {}, {}, raw)[2]
        out.append(response)
        return json.loads(response) if response.startswith(b"{") else None

    token = call("GET", MP, "/cgi-bin/token", {"grant_type": "client_credential",
                                              "appid": DEMO_MP_APPID, "secret": DEMO_MP_SECRET})
    mp = {"access_token": token["access_token"]}
    page = call("GET", MP, "/cgi-bin/user/get", mp)
    call("POST", MP, "/cgi-bin/user/info/batchget", mp,
         {"user_list": [{"openid": o} for o in page["data"]["openid"][:5]]})
    call("GET", MP, "/cgi-bin/user/info", {"access_token": "wrong", "openid": "x"})
    call("POST", MP, "/cgi-bin/qrcode/create", mp, {
        "action_name": "QR_STR_SCENE", "expire_seconds": 60,
        "action_info": {"scene": {"scene_str": "s"}}})
    call("POST", MP, "/cgi-bin/message/template/send", mp, {
        "touser": page["data"]["openid"][0], "template_id": "TPL_COUPON",
        "data": {"thing1": {"value": "a"}, "amount2": {"value": "b"}, "time3": {"value": "c"}}})
    work_token = call("GET", WORK, "/cgi-bin/gettoken",
                      {"corpid": DEMO_CORPID, "corpsecret": DEMO_CONTACT_SECRET})
    work = {"access_token": work_token["access_token"]}
    call("POST", WORK, "/cgi-bin/externalcontact/add_contact_way", work,
         {"type": 1, "scene": 2, "user": ["guide001"], "state": "s"})
    call("POST", WORK, "/cgi-bin/externalcontact/batch/get_by_user", work,
         {"userid_list": ["guide001"], "limit": 3})
    call("GET", WORK, "/cgi-bin/externalcontact/list", {"access_token": "bad"})
    sandbox.simulate_mp("scan", new_person={}, scene="store")
    sandbox.simulate_work("add_customer", userid="guide001", new_person={})
    sandbox.simulate_work("groupchat", action="create", owner="guide002")
    out += [sandbox.callbacks.build(event).body for event in sandbox.callbacks.pending()]
    out += [sandbox.callbacks.build(event).path_with_query.encode()
            for event in sandbox.callbacks.pending()]
    sandbox.close()
    return out


def test_same_seed_gives_byte_identical_output():
    first, second = transcript(11), transcript(11)

    assert len(first) == 10 + 2 * 4  # responses, then 4 callbacks: bodies and signed URLs
    assert first == second


def test_another_seed_gives_other_ids():
    first, other = transcript(11), transcript(12)

    assert first[0] != other[0]  # the access token
    assert first[-1] != other[-1]  # the callback signature and nonce
