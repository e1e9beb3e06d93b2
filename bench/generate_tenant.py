"""Benchmark ``manage.py generate_tenant`` against a fresh PostgreSQL database.

    .venv/bin/python bench/generate_tenant.py                      # 1M members, 10M orders
    .venv/bin/python bench/generate_tenant.py --members 100000 --orders 1000000 --keep

Creates database ``scrm_gen`` owned by the application role (no BYPASSRLS, so row-level
security applies as in production), migrates it, runs the command, checks the result with a
few set-based queries, prints the wall time of every phase, and drops the database unless
``--keep``.  Needs PostgreSQL on localhost:5432 with trust auth for ``postgres``.

It also adds up the CPU time the run used, in Python (the command and its workers) and in
the PostgreSQL backends serving it (read from /proc when the server is local): on a shared
machine the wall time says more about the neighbours than about the generator, and
CPU seconds / cores is what the run needs on an idle one.
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrm.devdb import ROLE, postgres_prepare  # noqa: E402

DATABASE = "scrm_gen"
URL = f"postgres://{ROLE}@127.0.0.1:5432/{DATABASE}"


def admin(statement: str) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(statement)
    conn.close()


def manage(*args: str, stream: bool = False) -> str:
    env = {**os.environ, "DATABASE_URL": URL}
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    if stream:  # progress bars go to our stderr; the summary is collected
        result = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE,
                                text=True)
        return result.stdout
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


class BackendCpu(threading.Thread):
    """Polls the CPU time of every backend connected to the bench database."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seconds: dict[int, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stopped.wait(0.5):
            with conn.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                               [DATABASE])
                pids = [pid for (pid,) in cursor.fetchall()]
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
        conn.close()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def checks(slug: str) -> dict[str, object]:
    conn = psycopg2.connect(URL)
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT id FROM scrm_tenant WHERE slug = %s", [slug])
        (tenant_id,) = cursor.fetchone()
        cursor.execute("SELECT set_config('scrm.tenant_id', %s, true)", [str(tenant_id)])
        queries = {
            "members": "SELECT count(*) FROM members_member",
            "identities": "SELECT count(*) FROM members_memberidentity",
            "members without identity": "SELECT count(*) FROM members_member m WHERE NOT "
            "EXISTS (SELECT 1 FROM members_memberidentity i WHERE i.member_id = m.id)",
            "member_no dense": "SELECT min(member_no) = 1 AND max(member_no) = count(*) "
            "FROM members_member",
            "orders": "SELECT count(*) FROM members_order",
            "order lines": "SELECT count(*) FROM members_orderline",
            "refunds": "SELECT count(*) FROM members_refund",
            "stats drift": "SELECT count(*) FROM members_memberstats s LEFT JOIN ("
            "SELECT member_id, count(*) FILTER (WHERE status <> 'refunded') n, "
            "sum(amount_fen - refunded_fen) spent FROM members_order GROUP BY member_id) o "
            "ON o.member_id = s.member_id WHERE s.order_count <> coalesce(o.n, 0) "
            "OR s.total_spent_fen <> coalesce(o.spent, 0)",
            "database size": f"SELECT pg_size_pretty(pg_database_size('{DATABASE}'))",
        }
        found = {}
        for label, query in queries.items():
            cursor.execute(query)
            found[label] = cursor.fetchone()[0]
    conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    options = parser.parse_args()
    if not postgres_prepare():
        sys.exit("PostgreSQL does not answer on localhost:5432")
    print(f"disk before: {shutil.disk_usage('/work').free / 2**30:.1f} GiB free")
    admin(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    try:
        manage("migrate", "--no-input", "-v0")
        args = ["generate_tenant", "bench", "--members", str(options.members),
                "--orders", str(options.orders)]
        if options.workers is not None:
            args += ["--workers", str(options.workers)]
        load_before = os.getloadavg()[0]
        python_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        backends = BackendCpu()
        backends.start()
        started = time.perf_counter()
        output = manage(*args, stream=True)
        wall = time.perf_counter() - started
        backends.stopped.set()
        backends.join()
        python_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        python_cpu = (python_after.ru_utime + python_after.ru_stime
                      - python_before.ru_utime - python_before.ru_stime)
        cores = os.cpu_count() or 1
        print(output.strip())
        print(f"wall time of the command: {wall:.1f}s "
              f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
              f"{cores} cores)")
        print(f"CPU: Python {python_cpu:.0f}s, PostgreSQL backends {backends.total:.0f}s; "
              f"on an idle machine at least {(python_cpu + backends.total) / cores:.0f}s "
              f"of wall time")
        phases = dict(re.findall(r"^phase (\w+): ([\d.]+)s$", output, re.MULTILINE))
        print("phases: " + ", ".join(f"{name} {seconds}s" for name, seconds in phases.items()))
        for label, value in checks("bench").items():
            print(f"  {label}: {value}")
        print(f"disk after: {shutil.disk_usage('/work').free / 2**30:.1f} GiB free")
    finally:
        if not options.keep:
            admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
