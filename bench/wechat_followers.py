"""Full OA follower sync from the sandbox into PostgreSQL: time, and peak memory as the
follower count grows.

    .venv/bin/python bench/wechat_followers.py                     # 250k then 1M followers
    .venv/bin/python bench/wechat_followers.py --followers 100000 200000

For each size: a fresh database (role scrm, so row-level security applies), a sandbox on a
local port serving that many followers, a tenant with the OA connected, then
``manage.py sync_followers`` timed with its peak RSS and the CPU seconds it, the PostgreSQL
backends serving it and the sandbox spent (so a figure taken under other load still means
something); then a second sync (nothing changed) and a check that every follower is one
member.  Needs PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_create, database_drop  # noqa: E402
from bench.orders_bulk import _cpu_seconds, admin_connection  # noqa: E402
from integrations.sandbox import fixtures  # noqa: E402

DATABASE = "scrm_bench_wechat"
PORT = 8810


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving ``database`` while it runs: a thread
    samples them from /proc every 0.2 s (backends exit with their connection, so the last
    sample of each counts; at most 0.2 s of a backend's work is missed)."""

    def __init__(self, database: str) -> None:
        self.database, self.seconds = database, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _backends(self, cursor) -> list[int]:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database])
        return [row[0] for row in cursor.fetchall()]

    def _run(self) -> None:
        admin = admin_connection()
        with admin.cursor() as cursor:
            while not self.stop.is_set():
                for pid in self._backends(cursor):
                    self.seconds[pid] = max(self.seconds.get(pid, 0.0), _cpu_seconds(pid))
                self.stop.wait(0.2)
        admin.close()

    def __enter__(self) -> "BackendCpu":
        admin = admin_connection()  # backends already there count from now on
        with admin.cursor() as cursor:
            self.start = {pid: _cpu_seconds(pid) for pid in self._backends(cursor)}
        admin.close()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def total(self) -> float:
        return sum(seconds - self.start.get(pid, 0.0) for pid, seconds in self.seconds.items())


def manage(env: dict, *args: str, sandbox: subprocess.Popen | None = None) -> dict:
    """Run ``manage.py``: wall seconds, peak RSS (MB), CPU seconds of the command, of the
    PostgreSQL backends and of the sandbox, load average at the end, stdout."""
    report = Path(tempfile.mkstemp(suffix=".time")[1])
    sandbox_before = _cpu_seconds(sandbox.pid) if sandbox else 0.0
    started = time.perf_counter()
    with BackendCpu(DATABASE) as backends:
        done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), PYTHON,
                               "manage.py", *args], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_kb, user, system = report.read_text().strip().splitlines()[-1].split()
    report.unlink()
    return {"wall": wall, "peak": int(peak_kb) // 1024, "cpu": float(user) + float(system),
            "postgres": backends.total,
            "sandbox": (_cpu_seconds(sandbox.pid) - sandbox_before) if sandbox else 0.0,
            "load": os.getloadavg(), "out": done.stdout.strip()}


def describe(count: int, run: dict) -> str:
    return (f"{run['wall']:.1f} s ({count / run['wall']:,.0f}/s), peak RSS {run['peak']} MB; "
            f"CPU {run['cpu']:.1f} s sync + {run['postgres']:.1f} s PostgreSQL + "
            f"{run['sandbox']:.1f} s sandbox; load {' '.join(f'{x:.2f}' for x in run['load'])}"
            f"\n    {run['out']}")


def sandbox_start(count: int) -> subprocess.Popen:
    spec = fixtures.resolve("demo", followers=count, page_size=10_000, work=[])
    path = Path(tempfile.mkstemp(suffix=".json")[1])
    path.write_text(json.dumps(spec))
    process = subprocess.Popen([PYTHON, "-m", "integrations.sandbox", "serve", "--fixture",
                                str(path), "--port", str(PORT), "--deliver", "manual"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import requests

    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/__fake__/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")


def counts(url: str) -> dict:
    connection = psycopg2.connect(url.replace("postgres://", "postgresql://"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('scrm.rls_bypass', 'on', false)")
        cursor.execute("SELECT count(*) FROM members_member")
        members = cursor.fetchone()[0]
        cursor.execute("SELECT count(*), count(DISTINCT openid) FROM integrations_follower "
                       "WHERE is_subscribed")
        followers, distinct = cursor.fetchone()
    connection.close()
    return {"members": members, "followers": followers, "distinct_openids": distinct}


def run(count: int, keep: bool) -> None:
    url = database_create(DATABASE)
    sandbox = sandbox_start(count)
    env = {**os.environ, "DATABASE_URL": url, "WECHAT_API_BASE_URL": f"http://127.0.0.1:{PORT}",
           "CELERY_TASK_ALWAYS_EAGER": "true"}
    env.pop("REDIS_URL", None)
    try:
        manage(env, "create_tenant", "bench", "--name", "Bench", "--owner-email", "o@bench.cn")
        manage(env, "connect_oa", "--tenant", "bench", "--appid", fixtures.DEMO_MP_APPID,
               "--secret", fixtures.DEMO_MP_SECRET, "--token", fixtures.DEMO_MP_TOKEN,
               "--aes-key", fixtures.DEMO_MP_AES_KEY)
        sync = ("sync_followers", "--tenant", "bench", "--appid", fixtures.DEMO_MP_APPID,
                "-v", "0")
        print(f"{count:,} followers, load at start {os.getloadavg()[0]:.2f}", flush=True)
        first = manage(env, *sync, sandbox=sandbox)
        found = counts(url)
        print(f"  first sync: {describe(count, first)}")
        print(f"  database: {found}; one member per follower: "
              f"{found['members'] == found['followers'] == found['distinct_openids'] == count}")
        again = manage(env, *sync, sandbox=sandbox)
        print(f"  second sync (nothing changed): {describe(count, again)}", flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        if not keep:
            database_drop(DATABASE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--port", type=int, default=PORT, help="the sandbox's port")
    args = parser.parse_args()
    globals()["PORT"] = args.port  # another run on this machine may hold the default
    print(f"load average at start: {os.getloadavg()}")
    for count in args.followers:
        run(count, args.keep)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
