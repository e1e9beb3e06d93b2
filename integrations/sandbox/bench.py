"""Throughput check: ``python -m integrations.sandbox.bench [--followers N] [--seconds S]``.

Starts the sandbox in a child process (so client and server do not share a GIL), then
measures from one keep-alive ``requests`` session: fixture load time and memory, user/get
pages per second, and user/info/batchget calls per second.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import resource
import time

import requests

log = logging.getLogger("integrations.sandbox.bench")
MP = "http://{base}/api.weixin.qq.com/cgi-bin/"


def _serve(followers: int, ready, port_box) -> None:
    from .core import FakeWeChat
    from .server import SandboxServer

    started = time.perf_counter()
    core = FakeWeChat("demo", followers=followers, work=[])
    load_s = time.perf_counter() - started
    server = SandboxServer(core)
    port_box.value = server.port
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ready.put({"load_s": load_s, "rss_mb": rss_mb})
    server.serve_forever()


def run(followers: int, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    ready, port_box = context.Queue(), context.Value("i", 0)
    child = context.Process(target=_serve, args=(followers, ready, port_box), daemon=True)
    child.start()
    try:
        loaded = ready.get(timeout=60)
        base = MP.format(base=f"127.0.0.1:{port_box.value}")
        session = requests.Session()
        from .fixtures import DEMO_MP_APPID, DEMO_MP_SECRET

        token = session.get(base + "token", params={
            "grant_type": "client_credential", "appid": DEMO_MP_APPID,
            "secret": DEMO_MP_SECRET}).json()["access_token"]
        pages, openids, elapsed = _pages(session, base, token)
        calls, batch_s = _batches(session, base, token, openids, seconds)
        sdk_calls, sdk_s = _wechatpy_batches(port_box.value, openids, seconds)
        return {"followers": followers, **loaded, "user_get_pages": pages,
                "user_get_pages_per_s": round(pages / elapsed, 1),
                "user_get_total_s": round(elapsed, 2),
                "batchget_calls": calls, "batchget_calls_per_s": round(calls / batch_s, 1),
                "wechatpy_get_batch_calls_per_s": round(sdk_calls / sdk_s, 1)}
    finally:
        child.terminate()
        child.join(5)


def _pages(session, base, token) -> tuple[int, list[str], float]:
    started, pages, cursor, openids = time.perf_counter(), 0, "", []
    while True:
        page = session.get(base + "user/get", params={"access_token": token,
                                                      "next_openid": cursor}).json()
        pages += 1
        if "data" not in page:
            return pages, openids, time.perf_counter() - started
        if len(openids) < 100_000:
            openids += page["data"]["openid"]
        cursor = page["next_openid"]


def _batches(session, base, token, openids, seconds) -> tuple[int, float]:
    url = base + "user/info/batchget?access_token=" + token
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        offset = (calls * 100) % max(len(openids) - 100, 1)
        body = {"user_list": [{"openid": o, "lang": "zh_CN"} for o in openids[offset:offset + 100]]}
        response = session.post(url, data=json.dumps(body))
        assert len(response.json()["user_info_list"]) == 100
        calls += 1
    return calls, time.perf_counter() - started


def server_cost(followers: int, rounds: int = 300) -> dict:
    """CPU cost of the sandbox itself (no HTTP, no client): ms per call, one core."""
    from .core import FakeWeChat
    from .fixtures import DEMO_MP_APPID, DEMO_MP_SECRET

    core = FakeWeChat("demo", followers=followers, work=[])
    host = "api.weixin.qq.com"
    token = json.loads(core.handle("GET", host, "/cgi-bin/token", {
        "grant_type": "client_credential", "appid": DEMO_MP_APPID,
        "secret": DEMO_MP_SECRET})[2])["access_token"]
    query = {"access_token": token}
    started = time.process_time()
    page = json.loads(core.handle("GET", host, "/cgi-bin/user/get", query)[2])
    for _ in range(20):
        core.handle("GET", host, "/cgi-bin/user/get", {**query, "next_openid": page["next_openid"]})
    page_ms = (time.process_time() - started) / 21 * 1000
    body = json.dumps({"user_list": [{"openid": o} for o in page["data"]["openid"][:100]]})
    started = time.process_time()
    for _ in range(rounds):
        core.handle("POST", host, "/cgi-bin/user/info/batchget", query, {}, body)
    batch_ms = (time.process_time() - started) / rounds * 1000
    return {"server_ms_per_user_get_page": round(page_ms, 2),
            "server_ms_per_batchget": round(batch_ms, 3)}


def _wechatpy_batches(port: int, openids: list[str], seconds: float) -> tuple[int, float]:
    from wechatpy import WeChatClient

    from .fixtures import DEMO_MP_APPID, DEMO_MP_SECRET
    from .transport import mount

    client = mount(WeChatClient(DEMO_MP_APPID, DEMO_MP_SECRET, timeout=(3.05, 10)),
                   base_url=f"http://127.0.0.1:{port}")
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        offset = (calls * 100) % max(len(openids) - 100, 1)
        assert len(client.user.get_batch(openids[offset:offset + 100])) == 100
        calls += 1
    return calls, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = {**run(args.followers, args.seconds), **server_cost(args.followers)}
    log.info(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
