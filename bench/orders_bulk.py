"""Throughput of ``POST /api/v1/orders/bulk/`` against gunicorn and PostgreSQL.

    .venv/bin/python bench/orders_bulk.py [--batches 50] [--size 1000] [--clients 3]

Makes a fresh ``scrm_bench`` database (role ``scrm``, so row-level security applies as in
production), migrates it, creates a tenant and an API key, starts gunicorn on 127.0.0.1 and
posts ``--batches`` batches of ``--size`` orders (two lines each; ``--repeat`` of them from
buyers who bought before) from ``--clients`` threads.  Prints orders/s, and the CPU time the
server side (gunicorn workers and their PostgreSQL backends) spent, which stays meaningful
when other work shares the machine.  Everything it starts, it stops.

The helpers here (database, server, CPU meter) are shared with ``bench/upsert_concurrency.py``.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import requests
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrm.devdb import ROLE, postgres_prepare  # noqa: E402

HOST = "127.0.0.1"
BENCH_DB = "scrm_bench"
BENCH_REDIS = f"redis://{HOST}:6379/14"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
MOBILE_PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "186", "188", "187")

# A gunicorn config for --mute-receivers: each worker disconnects what other apps attach to
# the members app's after-commit signals, to tell the cost of ingest from theirs.
MUTE_RECEIVERS = """
def post_worker_init(worker):
    from members import signals
    for signal in (signals.member_created, signals.member_updated, signals.order_paid,
                   signals.order_refunded, signals.member_merged):
        signal.receivers = []
        signal.sender_receivers_cache.clear()
"""


def admin_connection():
    connection = psycopg2.connect(
        host=HOST, user=os.environ.get("PGADMIN_USER", "postgres"), dbname="postgres"
    )
    connection.autocommit = True
    return connection


def database_create(name: str = BENCH_DB) -> str:
    """A fresh, migrated database owned by the application role; returns its URL."""
    if not postgres_prepare(HOST):
        raise SystemExit("PostgreSQL does not answer on 127.0.0.1:5432")
    admin = admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        cursor.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(ROLE)
            )
        )
    admin.close()
    url = f"postgres://{ROLE}@{HOST}:5432/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


def tenant_setup(url: str, *, stores: int = 20) -> str:
    """A tenant with ``stores`` stores (BS000...) and an API key; returns the key."""
    code = f"""
import django
django.setup()
from scrm.models import Store
from scrm.services import api_key_create, tenant_create
from scrm.tenancy import tenant_scope
tenant, _owner, _password = tenant_create(slug="bench", name="Bench", owner_email="o@bench.test")
with tenant_scope(tenant):
    Store.objects.bulk_create([Store(tenant=tenant, code=f"BS{{n:03d}}", name=f"店{{n}}")
                               for n in range({stores})])
_key, secret = api_key_create(tenant=tenant, name="bench")
print(secret)
"""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings"}
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


def redis_flush() -> None:
    """Empty the bench's Redis database (tasks queue there: no worker runs them)."""
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()


@dataclass
class Server:
    base: str
    pid: int
    database: str
    settings: str


@contextmanager
def gunicorn(
    url: str, *, port: int, workers: int, threads: int, mute_receivers: bool = False
) -> Iterator[Server]:
    """gunicorn (gthread workers) on 127.0.0.1:``port`` until the block ends.

    As in production, Celery tasks go to Redis (a database of the bench's own, emptied
    before and after) rather than running inside the request, and connections persist."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": BENCH_REDIS,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CONN_MAX_AGE": "3600",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    redis_flush()
    command = [
        GUNICORN, "scrm.wsgi:application", "--bind", f"{HOST}:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
        "--timeout", "120", "--log-level", "warning",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        if mute_receivers:
            config = Path(folder) / "mute.py"
            config.write_text(MUTE_RECEIVERS)
            command += ["--config", str(config)]
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            _wait_until_up(server, port)
            settings = f"{workers} workers x {threads} threads (gthread)"
            if mute_receivers:
                settings += ", other apps' receivers muted"
            yield Server(f"http://{HOST}:{port}", server.pid, url.rsplit("/", 1)[1], settings)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            redis_flush()


def _wait_until_up(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            requests.get(f"http://{HOST}:{port}/api/v1/members/", timeout=10)
            return
        except requests.RequestException:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                        pids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


class CpuMeter:
    """CPU seconds the server side spends: gunicorn's workers and the PostgreSQL backends
    serving its database (read from /proc; everything runs on this machine)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._sample()

    def _sample(self) -> dict[tuple[str, int], float]:
        admin = admin_connection()
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.server.database],
            )
            backends = [row[0] for row in cursor.fetchall()]
        admin.close()
        sample = {("postgres", pid): _cpu_seconds(pid) for pid in backends}
        for pid in _children(self.server.pid):
            sample[("gunicorn", pid)] = _cpu_seconds(pid)
        return sample

    def spent(self) -> dict[str, float]:
        end = self._sample()
        totals = {"gunicorn": 0.0, "postgres": 0.0}
        for key, seconds in end.items():
            totals[key[0]] += seconds - self.start.get(key, 0.0)
        return totals


def cpu_report(spent: dict[str, float], units: int, unit: str) -> str:
    total = spent["gunicorn"] + spent["postgres"]
    return (
        f"server CPU: {spent['gunicorn']:.1f} s gunicorn + {spent['postgres']:.1f} s PostgreSQL"
        f" = {total * 1000 / units:.2f} ms per {unit}; on 2 dedicated cores that is at most"
        f" {units / (total / 2):,.0f} {unit}s/s"
    )


def session_for(secret: str) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    )
    return session


def phone_for(number: int) -> str:
    """A valid mainland mobile number, different for every ``number`` below 10**9."""
    prefix = MOBILE_PREFIXES[number // 10**8 % len(MOBILE_PREFIXES)]
    return f"{prefix}{number % 10**8:08d}"


class Buyers:
    """Buyers with a phone and an openid; ``repeat`` of the orders go to earlier buyers."""

    def __init__(self, *, repeat: float, first: int = 0, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.repeat = repeat
        self.first = first
        self.count = 0

    def next(self) -> dict:
        if self.count and self.random.random() < self.repeat:
            number = self.first + self.random.randrange(self.count)
        else:
            number, self.count = self.first + self.count, self.count + 1
        return {
            "identities": [
                {"kind": "phone", "value": phone_for(number)},
                {"kind": "wechat_openid", "app_id": "wxbench", "value": f"o{number:012d}"},
            ],
            "name": f"顾客{number}",
            "gender": ("female", "male")[number % 2],
            "city": "上海",
        }


def batches_make(
    *, batches: int, size: int, repeat: float, stores: int, prefix: str = "B", first_buyer: int = 0
) -> list[bytes]:
    buyers = Buyers(repeat=repeat, first=first_buyer)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bodies = []
    for batch in range(batches):
        orders = []
        for n in range(size):
            price = 1000 + (batch * size + n) % 50_000
            orders.append(
                {
                    "order_no": f"{prefix}{batch:04d}-{n:05d}",
                    "channel": "pos",
                    "store": f"BS{n % stores:03d}",
                    "paid_at": (start + timedelta(seconds=batch * size + n)).isoformat(),
                    "amount_fen": price * 2 + 990,
                    "buyer": buyers.next(),
                    "lines": [
                        {
                            "sku": f"SKU{n % 300}",
                            "product": "精华液",
                            "category": "护肤",
                            "quantity": 2,
                            "price_fen": price,
                        },
                        {"sku": "BAG", "product": "礼袋", "quantity": 1, "price_fen": 990},
                    ],
                }
            )
        bodies.append(json.dumps({"orders": orders}, ensure_ascii=False).encode())
    return bodies


def post_all(base: str, secret: str, bodies: list[bytes], clients: int) -> tuple[float, dict]:
    """Post every body from ``clients`` threads; returns the elapsed time and the totals."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    totals = {"created": 0, "existing": 0, "failed": 0, "http_errors": 0}

    def client() -> None:
        session = session_for(secret)
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            response = session.post(f"{base}/api/v1/orders/bulk/", data=body, timeout=300)
            with lock:
                if response.status_code != 200:
                    totals["http_errors"] += 1
                    print("HTTP", response.status_code, response.text[:300], file=sys.stderr)
                    continue
                result = response.json()
                for key in ("created", "existing", "failed"):
                    totals[key] += result[key]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--repeat", type=float, default=0.3, help="share of repeat buyers")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--mute-receivers", action="store_true",
                        help="diagnostic: disconnect other apps' after-commit receivers")
    args = parser.parse_args()
    if not 1 <= args.batches <= 1000 or not 1 <= args.size <= 1000:
        raise SystemExit("--batches and --size must be between 1 and 1000")

    url = database_create()
    secret = tenant_setup(url)
    bodies = batches_make(batches=args.batches, size=args.size, repeat=args.repeat, stores=20)
    warmup = batches_make(
        batches=args.clients * 2, size=50, repeat=0, stores=20, prefix="W", first_buyer=9 * 10**8
    )
    with gunicorn(
        url, port=args.port, workers=args.workers, threads=args.threads,
        mute_receivers=args.mute_receivers,
    ) as server:  # fmt: skip
        post_all(server.base, secret, warmup, args.clients)
        meter = CpuMeter(server)
        elapsed, totals = post_all(server.base, secret, bodies, args.clients)
        spent = meter.spent()
    orders = args.batches * args.size
    print(
        f"gunicorn: {server.settings}; {args.clients} clients; {args.batches} batches x "
        f"{args.size} orders, {args.repeat:.0%} repeat buyers"
    )
    print(f"totals: {totals}")
    print(f"{orders} orders in {elapsed:.2f} s: {orders / elapsed:,.0f} orders/s")
    print(cpu_report(spent, orders, "order"))
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
