"""Points transactions per second through the API: earn and redeem against gunicorn.

    .venv/bin/python bench/points.py [--clients 8] [--seconds 30] [--members 10000]
                                     [--redeem 0.5] [--workers 4] [--threads 2] [--no-keys]
                                     [--batch 0]

Makes a fresh ``scrm_bench_points`` database (owned by the application role ``scrm``, so
row-level security applies as in production), gives ``--members`` members 100 points each
(generated in SQL like ``bench/points_expiry.py``), creates an API key, starts gunicorn
(gthread) on 127.0.0.1 and runs ``--clients`` threads, each with its own keep-alive
connection, posting ``POST /api/v1/points/earn/`` or ``/redeem/`` (``--redeem`` of them) for
a random member, each with its own ``Idempotency-Key`` unless ``--no-keys``.  With
``--batch N`` each request is ``POST /api/v1/points/batch/`` with N such operations, each
with its own key.  Each client stops at the deadline or after ``--max-requests``.  Prints
transactions/s, latency percentiles, answers by status, and the CPU time the server side
(gunicorn workers and their PostgreSQL backends) spent per transaction, which stays
meaningful when other work shares the machine.  Everything it starts, it stops; the database
is dropped unless ``--keep``.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.points_expiry import (  # noqa: E402
    admin_connect,
    cpu_seconds,
    database_create,
    database_drop,
    generate,
)

HOST = "127.0.0.1"
DATABASE = "scrm_bench_points"
# Celery tasks go to Redis as in production (a worker is not started: the request does only
# the request's work); an empty REDIS_URL would run every task eagerly inside the request.
BENCH_REDIS = f"redis://{HOST}:6379/13"
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PYTHON = str(ROOT / ".venv" / "bin" / "python")

API_KEY_CODE = """
import django
django.setup()
from scrm.models import Tenant
from scrm.services import api_key_create
_key, secret = api_key_create(tenant=Tenant.objects.get(slug="bench"), name="bench")
print(secret)
"""


def api_key(url: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
           "LOG_LEVEL": "WARNING"}
    done = subprocess.run([PYTHON, "-c", API_KEY_CODE], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()


def members_of(tenant_id: int) -> list[int]:
    connection = admin_connect(DATABASE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM members_member WHERE tenant_id = %s", [tenant_id])
        ids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return ids


class Server:
    """gunicorn (gthread) on 127.0.0.1 until ``stop``."""

    def __init__(self, url: str, *, port: int, workers: int, threads: int) -> None:
        redis_flush()
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": BENCH_REDIS, "CONN_MAX_AGE": "3600",
               "DEBUG": "false", "LOG_LEVEL": "WARNING"}
        self.port = port
        self.settings = f"{workers} workers x {threads} threads (gthread)"
        self.process = subprocess.Popen([
            GUNICORN, "scrm.wsgi:application", "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
            "--timeout", "120", "--log-level", "warning",
        ], cwd=ROOT, env=env)  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            try:
                connection = http.client.HTTPConnection(HOST, port, timeout=5)
                connection.request("GET", "/api/v1/points/policy/")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far: gunicorn (master and workers), PostgreSQL backends."""
        workers = [self.process.pid] + [
            int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _parent(pid) == str(
                self.process.pid)]
        connection = admin_connect()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s "
                           "AND pid <> pg_backend_pid()", [DATABASE])
            backends = [row[0] for row in cursor.fetchall()]
        connection.close()
        return sum(map(_cpu, workers)), sum(map(_cpu, backends))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _parent(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return ""


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def operation(rng: random.Random, members: list[int], redeem: float) -> tuple[str, dict]:
    kind = "redeem" if rng.random() < redeem else "earn"
    return kind, {"member": rng.choice(members),
                  "points": rng.randint(1, 20) if kind == "redeem" else rng.randint(1, 50),
                  "reason": "兑换" if kind == "redeem" else "线下活动"}


class Clients:
    def __init__(self, args: argparse.Namespace, secret: str, members: list[int]) -> None:
        self.args, self.secret, self.members = args, secret, members
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def request_body(self, rng: random.Random, key: str) -> tuple[str, dict]:
        if not self.args.batch:
            kind, body = operation(rng, self.members, self.args.redeem)
            return f"/api/v1/points/{kind}/", body
        operations = []
        for n in range(self.args.batch):
            kind, body = operation(rng, self.members, self.args.redeem)
            operations.append({"type": kind, "key": f"{key}-{n}", **body})
        return "/api/v1/points/batch/", {"operations": operations}

    def run(self, index: int, port: int, deadline: float) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        headers = {"Authorization": f"Bearer {self.secret}",
                   "Content-Type": "application/json"}
        latencies, statuses = [], Counter()
        for n in range(self.args.max_requests):
            if time.perf_counter() >= deadline:
                break
            path, body = self.request_body(rng, f"bench-{index}-{n}")
            if not self.args.no_keys:
                headers["Idempotency-Key"] = f"bench-{index}-{n}"
            started = time.perf_counter()
            connection.request("POST", path, body=json.dumps(body, ensure_ascii=False).encode(),
                               headers=headers)
            response = connection.getresponse()
            text = response.read()
            latencies.append(time.perf_counter() - started)
            if self.args.batch:
                results = json.loads(text)["results"] if response.status == 200 else []
                statuses.update(f"op {r['status']} {r.get('code', '')}".strip()
                                for r in results)
            statuses[response.status] += 1
            if response.status not in (200, 201, 409):
                with self.lock:
                    self.errors.append(f"{response.status} {text[:200]!r}")
        connection.close()
        with self.lock:
            self.latencies += latencies
            self.statuses += statuses


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000)[int(share * 1000) - 1]


def measure(args: argparse.Namespace, url: str, secret: str, members: list[int]) -> None:
    server = Server(url, port=args.port, workers=args.workers, threads=args.threads)
    try:
        clients = Clients(args, secret, members)
        warm = time.perf_counter() + 2  # every worker connects and imports once
        threads = [threading.Thread(target=clients.run, args=(i, args.port, warm))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clients = Clients(args, secret, members)
        cpu_before = server.cpu()
        started = time.perf_counter()
        deadline = started + args.seconds
        threads = [threading.Thread(target=clients.run, args=(1000 + i, args.port, deadline))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = server.cpu()
    finally:
        server.stop()
    report(args, server, clients, elapsed, cpu_before, cpu_after)


def report(args, server, clients, elapsed, cpu_before, cpu_after) -> None:
    if args.batch:
        done = clients.statuses["op applied"] + clients.statuses["op replayed"]
    else:
        done = clients.statuses[200] + clients.statuses[201]
    gunicorn = cpu_after[0] - cpu_before[0]
    postgres = cpu_after[1] - cpu_before[1]
    per = (gunicorn + postgres) / max(done, 1)
    print(f"gunicorn: {server.settings}; {args.clients} clients for {elapsed:.1f} s; "
          f"{args.redeem:.0%} redemptions; Idempotency-Key: {'no' if args.no_keys else 'yes'}"
          + (f"; batches of {args.batch} operations" if args.batch else ""))
    print(f"answers: {dict(sorted(clients.statuses.items(), key=str))}")
    print(f"points transactions: {done:,} in {elapsed:.1f} s = {done / elapsed:,.0f}/s")
    if clients.latencies:
        print("latency: p50 {:.1f} ms, p95 {:.1f} ms, p99 {:.1f} ms".format(
            *(percentile(clients.latencies, p) * 1000 for p in (0.5, 0.95, 0.99))))
    print(f"server CPU: {gunicorn:.1f} s gunicorn + {postgres:.1f} s PostgreSQL = "
          f"{per * 1000:.2f} ms a transaction; on 2 dedicated cores at most "
          f"{2 / per:,.0f} transactions/s")
    for error in clients.errors[:5]:
        print(f"error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--redeem", type=float, default=0.5, help="share of redemptions")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per client")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--no-keys", action="store_true", help="send no Idempotency-Key")
    parser.add_argument("--batch", type=int, default=0,
                        help="operations per request to /points/batch/ (0: one per request)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.seconds <= 600:
        raise SystemExit("--clients must be 1..64 and --seconds 1..600")
    if not 1 <= args.members <= 1_000_000 or not 0 <= args.redeem <= 1:
        raise SystemExit("--members must be 1..1,000,000 and --redeem 0..1")
    if not 0 <= args.batch <= 500:
        raise SystemExit("--batch must be 0..500")
    url = database_create(DATABASE)
    try:
        tenant_id = generate(members=args.members, per_member=1, due=0, database=DATABASE)
        measure(args, url, api_key(url), members_of(tenant_id))
    finally:
        redis_flush()
        if not args.keep:
            database_drop(DATABASE)


if __name__ == "__main__":
    main()
