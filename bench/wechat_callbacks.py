"""OA callbacks received by the app under a steady rate: answer latency (p50/p95/p99).

    .venv/bin/python bench/wechat_callbacks.py                    # 100/s for 30 s
    .venv/bin/python bench/wechat_callbacks.py --rate 200 --seconds 20

A fresh database (role scrm), a tenant with the demo OA connected, gunicorn on 127.0.0.1 with
Celery tasks going to Redis (no worker consumes them: the request does only what the callback
URL does in production: check, decrypt, record once, queue).  The sandbox, in process, makes
the events (follows by new people, followers leaving and coming back, unfollows) and signs and
encrypts each request; they are built before the clock starts and sent open-loop at
``--rate`` per second from a thread pool, so a slow answer does not slow the sender down.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import database_drop  # noqa: E402
from bench.orders_bulk import (  # noqa: E402
    PYTHON,
    CpuMeter,
    cpu_report,
    database_create,
    gunicorn,
    tenant_setup,
)
from integrations.sandbox import fixtures  # noqa: E402
from integrations.sandbox.core import FakeWeChat  # noqa: E402

DATABASE = "scrm_bench_callbacks"
PORT = 8768


def requests_make(count: int) -> list:
    """Signed, encrypted callback requests: 60% follows by new people, 30% followers
    leaving and coming back, 10% unfollows."""
    from datetime import UTC, datetime

    # A running clock from now: the requests carry timestamps the app accepts as fresh.
    core = FakeWeChat("demo", followers=10_000, work=[], deliver="manual", clock="running",
                      now=datetime.now(UTC).isoformat())
    built = []
    for i in range(count):
        if i % 10 < 6:
            core.simulate_mp("subscribe")
        elif i % 10 < 9:
            core.simulate_mp("unsubscribe", person=i)
            core.simulate_mp("subscribe", person=i)
        else:
            core.simulate_mp("unsubscribe", person=10_000 - i)
        built += [core.callbacks.build(event) for event in core.callbacks.take()]
    core.close()
    return built[:count]


def connect(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "manage.py", "connect_oa", "--tenant", "bench", "--appid",
                    fixtures.DEMO_MP_APPID, "--secret", fixtures.DEMO_MP_SECRET, "--token",
                    fixtures.DEMO_MP_TOKEN, "--aes-key", fixtures.DEMO_MP_AES_KEY],
                   cwd=ROOT, env=env, check=True, capture_output=True)


def send_all(base: str, built: list, rate: float, threads: int) -> tuple[list, dict]:
    latencies, statuses, lock = [], {}, threading.Lock()
    sessions = threading.local()
    start = time.perf_counter() + 0.5

    def send(index: int) -> None:
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if not hasattr(sessions, "http"):
            sessions.http = requests.Session()
        request = built[index]
        began = time.perf_counter()
        response = sessions.http.post(base + request.path_with_query, data=request.body,
                                      headers={"Content-Type": "text/xml"}, timeout=10)
        elapsed = time.perf_counter() - began
        with lock:
            latencies.append(elapsed)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(len(built))))
    return latencies, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    built = requests_make(count)
    url = database_create(DATABASE)
    try:
        tenant_setup(url, stores=1)
        connect(url)
        with gunicorn(url, port=PORT, workers=args.workers, threads=args.threads) as server:
            warm = requests_make(20)
            send_all(server.base, warm, 50, 4)
            meter = CpuMeter(server)
            began = time.perf_counter()
            latencies, statuses = send_all(server.base, built, args.rate, 32)
            elapsed = time.perf_counter() - began
            spent = meter.spent()
        print(f"gunicorn: {server.settings}; {len(built)} callbacks at {args.rate:.0f}/s "
              f"offered, {len(built) / elapsed:.1f}/s answered over {elapsed:.1f} s")
        print(f"answers: {statuses}")
        print(f"latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
              f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
              f"mean {statistics.mean(latencies) * 1000:.1f} ms")
        print(cpu_report(spent, len(built), "callback"))
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on 2 CPUs")
    finally:
        database_drop(DATABASE)



if __name__ == "__main__":
    main()
