"""Webhook delivery: events/s through the outbox fanned out to endpoints on loopback, and
nothing lost while one endpoint is down for a while.

    .venv/bin/python bench/webhooks.py                        # 1,000 events/s, 10 endpoints
    .venv/bin/python bench/webhooks.py --rate 500 --seconds 60 --senders 3

A fresh database (``scrm_bench_webhooks``), a tenant with ``--endpoints`` endpoints, each
an aiohttp receiver on its own port in one receiver process. The producer writes
``--rate`` events a second into the outbox (one COPY per tenth of a second, as a bulk path
does) for ``--seconds``; one relay process fans them out and ``--senders`` sender
processes deliver them (what the Celery tasks run, in a loop); a thread vacuums the queue
tables every 10 s as autovacuum would (``--no-vacuum`` where the server runs autovacuum).
Endpoint 0 answers 503 from ``--down-at`` for ``--down-for`` seconds and then recovers;
retries use a short backoff (5 s doubling, at most 20 s). At the end every receiver must
hold every event id exactly once or more (at-least-once): the script reports what each
got, the duplicates, and the POSTs/s reached while all endpoints were up.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_drop  # noqa: E402
from bench.orders_bulk import BENCH_REDIS, database_create, redis_flush  # noqa: E402

DB = "scrm_bench_webhooks"
BASE_PORT = 18600


# The receivers (their own process)

def receivers_main(count: int, down_at: float, down_for: float, started: float) -> None:
    from aiohttp import web

    seen: list[set[bytes]] = [set() for _ in range(count)]
    posts = [0] * count

    def handler(index: int):
        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            posts[index] += 1
            now = time.time() - started
            if index == 0 and down_at <= now < down_at + down_for:
                return web.Response(status=503, text="down for maintenance")
            seen[index].add(body[7:43])  # '{"id":"<uuid>"...'
            return web.Response(text="ok")

        async def stats(_request: web.Request) -> web.Response:
            return web.json_response({"unique": len(seen[index]), "posts": posts[index]})

        return receive, stats

    async def serve() -> None:
        for index in range(count):
            receive, stats = handler(index)
            app = web.Application()
            app.router.add_post("/hook", receive)
            app.router.add_get("/stats", stats)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", BASE_PORT + index, backlog=1024).start()
        await asyncio.Event().wait()

    import uvloop

    uvloop.run(serve())


def receiver_stats(count: int) -> list[dict]:
    return [json.loads(urllib.request.urlopen(  # noqa: S310 (loopback)
        f"http://127.0.0.1:{BASE_PORT + i}/stats", timeout=5).read()) for i in range(count)]


# Django side: setup, the producer, the relay and the senders

def django_setup() -> None:
    import django

    django.setup()


def tenant_setup(endpoints: int) -> int:
    from integrations.webhooks.services.endpoints import endpoint_create
    from scrm.access import ALL_SCOPES, Actor
    from scrm.events import EVENT_TYPES
    from scrm.services import tenant_create
    from scrm.tenancy import tenant_scope

    tenant, _owner, _password = tenant_create(slug="bench", name="Bench",
                                              owner_email="o@bench.test")
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    with tenant_scope(tenant):
        for index in range(endpoints):
            endpoint_create(actor=actor, name=f"partner {index}",
                            url=f"http://127.0.0.1:{BASE_PORT + index}/hook",
                            event_types=list(EVENT_TYPES))
    return tenant.pk


def produce(tenant_id: int, rate: int, seconds: float) -> int:
    """``rate`` events/s for ``seconds``, one COPY per tenth of a second."""
    from django.db import transaction

    from scrm.events import events_record
    from scrm.tenancy import tenant_scope

    per_tick, written, started = max(rate // 10, 1), 0, time.perf_counter()
    with tenant_scope(tenant_id):
        tick = 0
        while time.perf_counter() - started < seconds:
            with transaction.atomic():
                written += events_record(tenant_id=tenant_id, type="points.changed", payloads=[
                    {"member_id": written + i, "kind": "earn", "points": 10}
                    for i in range(per_tick)])
            tick += 1
            pause = started + tick / 10 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    return written


def worker_main(role: str) -> None:
    django_setup()
    from django.db import DatabaseError

    from integrations.webhooks.services.delivery import deliveries_send_due
    from integrations.webhooks.services.relay import relay_pending

    work = (lambda: relay_pending()[0]) if role == "relay" else (
        lambda: deliveries_send_due(seconds=10))
    while True:  # as Celery would: a task that failed runs again at the next beat
        try:
            if not work():
                time.sleep(0.02)
        except DatabaseError as exc:
            print(f"{role}: {exc}", file=sys.stderr)
            time.sleep(1)


def vacuum_main(database_url: str, stop: threading.Event, every: float = 10) -> None:
    """What autovacuum does on a default PostgreSQL (this machine's has it off): the queue
    table is rewritten three times per delivery, and without vacuum its due index fills
    with dead entries that every claim walks over.  Its own backend, so its CPU counts."""
    import psycopg2

    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        while not stop.wait(every):
            cursor.execute("VACUUM (ANALYZE) webhooks_webhookdelivery, scrm_outboxevent")
    conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids() -> list[int]:
    """The PostgreSQL server processes serving the bench database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                       "pg_backend_pid()", [DB])
        return [pid for (pid,) in cursor.fetchall()]


def backlog() -> dict[str, int]:
    from django.db.models import Count

    from integrations.webhooks.models import WebhookDelivery
    from scrm.models import OutboxEvent
    from scrm.tenancy import unscoped_access

    with unscoped_access("bench"):
        counts = dict(WebhookDelivery.objects.unscoped().values_list("status").annotate(
            n=Count("pk")).values_list("status", "n"))
        counts["unrelayed"] = OutboxEvent.objects.unscoped().filter(
            relayed_at__isnull=True).count()
    return counts


def main() -> None:  # noqa: C901 (one run, start to end)
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000, help="events a second")
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--down-at", type=float, default=10)
    parser.add_argument("--down-for", type=float, default=60)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--no-vacuum", action="store_true",
                        help="leave the tables to autovacuum (when the server runs it)")
    parser.add_argument("--role", choices=["relay", "sender", "receivers"], help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "receivers":
        receivers_main(args.endpoints, args.down_at, args.down_for, args.started)
        return
    if args.role:
        worker_main(args.role)
        return

    url = database_create(DB)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": BENCH_REDIS,
           "CELERY_TASK_ALWAYS_EAGER": "false", "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
           "WEBHOOK_RETRY_BASE_SECONDS": "5", "WEBHOOK_RETRY_MAX_SECONDS": "20",
           "WEBHOOK_DISABLE_AFTER_HOURS": "24", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    redis_flush()
    django_setup()
    tenant_id = tenant_setup(args.endpoints)
    started = time.time()
    script = str(Path(__file__).resolve())
    common = ["--endpoints", str(args.endpoints), "--down-at", str(args.down_at),
              "--down-for", str(args.down_for), "--started", str(started)]
    processes = [subprocess.Popen([PYTHON, script, "--role", "receivers", *common], env=env)]
    time.sleep(1.5)
    processes.append(subprocess.Popen([PYTHON, script, "--role", "relay"], env=env))
    processes += [subprocess.Popen([PYTHON, script, "--role", "sender"], env=env)
                  for _ in range(args.senders)]
    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            try:
                stats = receiver_stats(args.endpoints)
            except OSError:
                stats = []
            if stats:
                samples.append((time.time() - started, sum(s["posts"] for s in stats)))
            sampling.wait(1)

    threading.Thread(target=sample, daemon=True).start()
    if not args.no_vacuum:
        threading.Thread(target=vacuum_main, args=(url, sampling), daemon=True).start()
    try:
        produce_started = time.perf_counter()
        written = produce(tenant_id, args.rate, args.seconds)
        produce_seconds = time.perf_counter() - produce_started
        print(f"produced {written} events in {produce_seconds:.1f} s "
              f"({written / produce_seconds:.0f}/s)")
        expected = written
        deadline = time.perf_counter() + args.drain_timeout
        while time.perf_counter() < deadline:
            stats = receiver_stats(args.endpoints)
            if all(s["unique"] >= expected for s in stats):
                break
            time.sleep(1)
        drained = time.time() - started
        stats = receiver_stats(args.endpoints)
        roles = ["receivers", "relay"] + ["sender"] * args.senders
        cpu: dict[str, float] = {}
        for role, process in zip(roles, processes, strict=True):
            cpu[role] = cpu.get(role, 0.0) + cpu_seconds(process.pid)
        cpu["postgresql"] = sum(cpu_seconds(pid) for pid in backend_pids())
    finally:
        sampling.set()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
    report(args, expected, stats, samples, drained, backlog())
    posts = sum(s["posts"] for s in stats) or 1
    print("CPU per POST: " + ", ".join(f"{role} {seconds / posts * 1e6:.0f} µs ({seconds:.1f} s)"
                                       for role, seconds in cpu.items()))
    product = sum(seconds for role, seconds in cpu.items() if role != "receivers")
    print(f"relay + senders + PostgreSQL: {product / posts * 1e6:.0f} µs per POST, i.e. "
          f"{posts / product:.0f} POSTs per CPU-second; load {os.getloadavg()[0]:.1f}")
    redis_flush()
    database_drop(DB)


def report(args, expected: int, stats: list[dict], samples, drained: float,
           counts: dict[str, int]) -> None:
    lost = [expected - s["unique"] for s in stats]
    print(f"endpoints: {args.endpoints}, senders: {args.senders}, endpoint 0 down "
          f"{args.down_at:.0f}-{args.down_at + args.down_for:.0f} s")
    for index, s in enumerate(stats):
        print(f"  endpoint {index}: {s['unique']}/{expected} events, {s['posts']} POSTs")
    print(f"lost: {sum(lost)}  (per endpoint: {lost})")
    print(f"all delivered after {drained:.0f} s; delivery rows: {counts}")
    window = 10
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[window:], strict=False)
             if b[0] > a[0]]
    if rates:
        print(f"POSTs/s, best {window} s window: {max(rates):.0f}")
    total = sum(s["posts"] for s in stats)
    print(f"POSTs in all: {total}, over {drained:.0f} s: {total / drained:.0f}/s on average")


if __name__ == "__main__":
    main()
