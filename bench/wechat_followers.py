"""Full OA follower sync from the sandbox into PostgreSQL: time, and peak memory as the
follower count grows.

    .venv/bin/python bench/wechat_followers.py                     # 250k then 1M followers
    .venv/bin/python bench/wechat_followers.py --followers 100000 200000

For each size: a fresh database (role scrm, so row-level security applies), a sandbox on a
local port serving that many followers, a tenant with the OA connected, then
``manage.py sync_followers`` timed with its peak RSS; then a second sync (nothing changed)
and a check that every follower is one member.  Needs PostgreSQL on 127.0.0.1:5432 with
trust auth for ``postgres``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_create, database_drop, timed_run  # noqa: E402
from integrations.sandbox import fixtures  # noqa: E402

DATABASE = "scrm_bench_wechat"
PORT = 8810


def manage(env: dict, *args: str) -> tuple[float, int, str]:
    return timed_run([PYTHON, "manage.py", *args], env=env)


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
        wall, peak, out = manage(env, *sync)
        found = counts(url)
        print(f"{count:,} followers: first sync {wall:.1f} s ({count / wall:,.0f}/s), "
              f"peak RSS {peak} MB; {out.strip()}")
        print(f"  database: {found}; one member per follower: "
              f"{found['members'] == found['followers'] == found['distinct_openids'] == count}")
        wall, peak, out = manage(env, *sync)
        print(f"  second sync (nothing changed): {wall:.1f} s, peak RSS {peak} MB; "
              f"{out.strip()}")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        if not keep:
            database_drop(DATABASE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    for count in args.followers:
        run(count, args.keep)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
