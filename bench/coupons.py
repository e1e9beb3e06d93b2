"""Coupons at scale: a million coupons issued to a million members in one bulk issue, and
redemptions per second through the API.

    .venv/bin/python bench/coupons.py [--members 1000000] [--chunk 50000] [--generate]
                                      [--seconds 10] [--clients 8] [--workers 4]
                                      [--threads 2] [--keep]

1. A fresh ``scrm_bench_coupons`` database (``bench.common.database_create``: owned by the
   application role ``scrm``, so row-level security applies as in production), a tenant and
   ``--members`` members: inserted set-based in SQL like ``bench/points_expiry.py`` (a few
   seconds), or with ``--generate`` by ``manage.py generate_tenant bench --members N
   --orders 0`` (members with names and identities, a few minutes); then analysed, as
   after any load.
2. In a child process of its own (so its peak RSS is the issue's): a template with stock
   for everyone, and ``coupons_issue_bulk`` over every member, the ids streamed from a
   server-side cursor, in chunks of ``--chunk``, each its own transaction, with the timeline
   event per coupon.  Prints the time and rate, the RSS after the first chunk and at the end
   (flat memory: the same), and checks the result (count, distinct codes, stock).
3. The same bulk issue again (a crashed campaign resumed): issues nothing.
4. ``--seconds`` of redemptions through ``POST /api/v1/coupons/redeem/`` against gunicorn,
   ``--clients`` threads each with its own keep-alive connection, each redeeming codes of its
   own (a checkout of ¥150 at no particular store), with an Idempotency-Key; answers by
   status, redemptions/s, latency percentiles, and the server side's CPU per redemption.
5. ``coupons_expire`` of what is left (a million, give or take) in batches of 50,000.

Everything goes to stdout and to ``bench/out/coupons.txt``, with the load average before and
after (other work on this 2-core machine slows every figure).  The database is dropped unless
``--keep``.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_drop, timed_run  # noqa: E402
from bench.orders_bulk import CpuMeter, database_create, gunicorn  # noqa: E402

DATABASE = "scrm_bench_coupons"
OUT = ROOT / "bench" / "out" / "coupons.txt"
HOST = "127.0.0.1"

MEMBERS_SQL = """
INSERT INTO members_member (tenant_id, member_no, name, gender, province, city,
    phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
    marketing_consent, status, created_at, updated_at)
SELECT %(tenant)s, n, '', 'unknown', '', '', '', '', '', 'api', '{}', false, 'active', now(),
       now()
FROM generate_series(1, %(members)s) AS n
"""


class Report:
    """Lines to stdout and to the output file."""

    def __init__(self) -> None:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        self.file = OUT.open("w")

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def django_env(url: str) -> dict:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
            "LOG_LEVEL": "WARNING", "CELERY_TASK_ALWAYS_EAGER": "true", "REDIS_URL": ""}


def members_make(url: str, *, members: int, generate: bool, report: Report) -> None:
    started = time.perf_counter()
    if generate:
        subprocess.run([PYTHON, "manage.py", "generate_tenant", "bench", "--members",
                        str(members), "--orders", "0", "-v", "0"], cwd=ROOT,
                       env=django_env(url), check=True)
    else:
        subprocess.run([PYTHON, "manage.py", "create_tenant", "bench", "--name", "Bench",
                        "--owner-email", "owner@bench.test"], cwd=ROOT, env=django_env(url),
                       check=True, stdout=subprocess.DEVNULL)
        connection = admin_connection_to(DATABASE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM scrm_tenant WHERE slug = 'bench'")
            tenant = cursor.fetchone()[0]
            cursor.execute(MEMBERS_SQL, {"tenant": tenant, "members": members})
        connection.close()
    connection = admin_connection_to(DATABASE)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE members_member")
    connection.close()
    how = "generate_tenant --orders 0" if generate else "SQL"
    report.line(f"{members:,} members ({how}): {time.perf_counter() - started:.1f} s")


def admin_connection_to(database: str):
    import psycopg2

    connection = psycopg2.connect(host=HOST, dbname=database,
                                  user=os.environ.get("PGADMIN_USER", "postgres"))
    connection.autocommit = True
    return connection


# The child: one bulk issue, timed, with its RSS after the first chunk and at the end.
CHILD = """
import json, os, resource, sys, time
import django
django.setup()
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services import coupon_template_save, coupons_issue_bulk
from campaigns.coupons.services.common import system_actor
from members.models import Member
from scrm.models import Tenant
from scrm.tenancy import tenant_scope

members, chunk = int(sys.argv[1]), int(sys.argv[2])
def cpu(pid="self"):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 // 2**20
tenant = Tenant.objects.get(slug="bench")
with tenant_scope(tenant):
    actor = system_actor()
    template = CouponTemplate.objects.filter(code="bench-1m").first() or coupon_template_save(
        actor=actor, changes={"code": "bench-1m", "name": "满 100 减 10", "kind": "fixed",
                              "amount_fen": 1000, "threshold_fen": 10000,
                              "validity": "relative", "valid_days": 30,
                              "total_stock": members, "per_member_limit": 1})
    ids = Member.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=chunk)
    seen = {"chunks": 0, "first_rss": None, "times": []}
    last = time.perf_counter()
    def on_chunk(result):
        global last
        seen["chunks"] += 1
        now = time.perf_counter()
        seen["times"].append(round(now - last, 2))
        last = now
        if seen["first_rss"] is None:
            seen["first_rss"] = rss_mb()
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu_before = (cpu(), cpu(backend))
    started = time.perf_counter()
    issued = coupons_issue_bulk(actor=actor, template=template, member_ids=ids,
                                key_prefix="campaign:1", source="campaign", ref="1",
                                chunk_size=chunk, on_chunk=on_chunk)
    elapsed = time.perf_counter() - started
    cpu_python, cpu_postgres = cpu() - cpu_before[0], cpu(backend) - cpu_before[1]
    template.refresh_from_db()
    check = {"coupons": Coupon.objects.count(),
             "codes": Coupon.objects.values("code").distinct().count(),
             "issued_count": template.issued_count}
print(json.dumps({"issued": issued, "seconds": elapsed, "chunks": seen["chunks"],
                  "chunk_seconds": seen["times"], "rss_first_chunk_mb": seen["first_rss"],
                  "rss_end_mb": rss_mb(), "cpu_python": cpu_python,
                  "cpu_postgres": cpu_postgres,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  **check}))
"""


def bulk_issue(url: str, *, members: int, chunk: int, report: Report, label: str) -> dict:
    wall, peak_mb, stdout = timed_run([PYTHON, "-c", CHILD, str(members), str(chunk)],
                                      env=django_env(url))
    result = json.loads(stdout.strip().splitlines()[-1])
    report.line(f"{label}: {result['issued']:,} coupons issued in {result['seconds']:.1f} s "
                f"({result['issued'] / result['seconds']:,.0f}/s) in {result['chunks']} chunks"
                f" of {chunk:,}; process wall {wall:.1f} s, peak RSS {peak_mb} MB (after the "
                f"first chunk {result['rss_first_chunk_mb']} MB, at the end "
                f"{result['rss_end_mb']} MB)")
    spent = result["cpu_python"] + result["cpu_postgres"]
    each = f", {spent / result['issued'] * 1e6:.0f} µs a coupon" if result["issued"] else ""
    report.line(f"  CPU: {result['cpu_python']:.1f} s Python + {result['cpu_postgres']:.1f} s "
                f"PostgreSQL backend = {spent:.1f} s: the floor of the wall time on an idle "
                f"machine (the two take turns){each}")
    if result["chunk_seconds"]:
        times = result["chunk_seconds"]
        report.line(f"  seconds a chunk: min {min(times)}, median {statistics.median(times)}, "
                    f"max {max(times)}")
    report.line(f"  check: {result['coupons']:,} coupons, {result['codes']:,} distinct codes, "
                f"template issued_count {result['issued_count']:,}")
    return result


API_KEY_CODE = """
import django
django.setup()
from scrm.models import Tenant
from scrm.services import api_key_create
_key, secret = api_key_create(tenant=Tenant.objects.get(slug="bench"), name="bench")
print(secret)
"""


def codes_for(clients: int, per_client: int) -> list[list[str]]:
    connection = admin_connection_to(DATABASE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM coupons_coupon WHERE status = 'issued' ORDER BY id "
                       "LIMIT %s", [clients * per_client])
        codes = [row[0] for row in cursor.fetchall()]
    connection.close()
    return [codes[n::clients] for n in range(clients)]


def redeem_rush(url: str, args: argparse.Namespace, report: Report) -> None:
    secret = subprocess.run([PYTHON, "-c", API_KEY_CODE], cwd=ROOT, env=django_env(url),
                            check=True, capture_output=True, text=True).stdout.split()[-1]
    codes = [iter(batch) for batch in codes_for(args.clients, 20_000)]
    port = 8771
    with gunicorn(url, port=port, workers=args.workers, threads=args.threads) as server:
        _rush(port, secret, codes, seconds=3)  # every worker connects and imports once
        meter = CpuMeter(server)
        elapsed, latencies, statuses = _rush(port, secret, codes, seconds=args.seconds)
        spent = meter.spent()
    done = statuses.get(200, 0)
    report.line(f"redemptions through the API: gunicorn {server.settings}, {args.clients} "
                f"clients for {elapsed:.1f} s: answers {dict(sorted(statuses.items()))}")
    report.line(f"  {done:,} redeemed = {done / elapsed:,.0f}/s; latency p50 "
                f"{_pct(latencies, 0.5):.1f} ms, p95 {_pct(latencies, 0.95):.1f} ms, p99 "
                f"{_pct(latencies, 0.99):.1f} ms")
    total = spent["gunicorn"] + spent["postgres"]
    if done:
        report.line(f"  server CPU: {spent['gunicorn']:.1f} s gunicorn + "
                    f"{spent['postgres']:.1f} s PostgreSQL = {total * 1000 / done:.1f} ms a "
                    f"redemption; on 2 dedicated cores at most {done / (total / 2):,.0f}/s")


def _rush(port: int, secret: str, codes: list, *, seconds: float
          ) -> tuple[float, list[float], dict[int, int]]:
    """Each client redeems its own codes until the deadline."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    threads = [threading.Thread(target=_post_codes,
                                args=(port, secret, own, deadline, latencies, statuses))
               for own in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, sorted(latencies), statuses


def _pct(values: list[float], share: float) -> float:
    return values[min(int(len(values) * share), len(values) - 1)] * 1000 if values else 0.0


def _post_codes(port: int, secret: str, codes, deadline: float,
                latencies: list[float], statuses: dict[int, int]) -> None:
    client = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    for code in codes:
        if time.monotonic() >= deadline:
            break
        body = json.dumps({"code": code, "order_amount_fen": 15000})
        started = time.perf_counter()
        client.request("POST", "/api/v1/coupons/redeem/", body,
                       {**headers, "Idempotency-Key": uuid.uuid4().hex})
        response = client.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    client.close()


EXPIRE_CODE = """
import time
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from campaigns.coupons.services import coupons_expire
from scrm.models import Tenant
from scrm.tenancy import tenant_scope

with tenant_scope(Tenant.objects.get(slug="bench")):
    started = time.perf_counter()
    expired = coupons_expire(now=timezone.now() + timedelta(days=31))
print(expired, time.perf_counter() - started)
"""


def expire(url: str, report: Report) -> None:
    wall, peak_mb, stdout = timed_run([PYTHON, "-c", EXPIRE_CODE], env=django_env(url))
    expired, seconds = stdout.split()[-2:]
    report.line(f"coupons_expire: {int(expired):,} expired in {float(seconds):.1f} s "
                f"({int(expired) / float(seconds):,.0f}/s), peak RSS {peak_mb} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--generate", action="store_true",
                        help="members by generate_tenant --orders 0 instead of SQL")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    report = Report()
    report.line(f"# bench/coupons.py {' '.join(sys.argv[1:])}")
    report.line(f"# start {datetime.now(UTC).isoformat(timespec='seconds')}, load average "
                f"{load()} on {os.cpu_count()} CPUs")
    url = database_create(DATABASE)
    try:
        members_make(url, members=args.members, generate=args.generate, report=report)
        bulk_issue(url, members=args.members, chunk=args.chunk, report=report,
                   label="bulk issue")
        bulk_issue(url, members=args.members, chunk=args.chunk, report=report,
                   label="the same bulk issue again (resumed)")
        redeem_rush(url, args, report)
        expire(url, report)
    finally:
        if not args.keep:
            database_drop(DATABASE)
    report.line(f"# end {datetime.now(UTC).isoformat(timespec='seconds')}, load average "
                f"{load()}")


if __name__ == "__main__":
    main()
