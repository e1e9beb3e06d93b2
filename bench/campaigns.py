"""A campaign to a million members: a coupon each and a delivery row each, through the
worker's path (``campaign_run_task`` → ``campaign_run``), timed, with memory sampled.

    .venv/bin/python bench/campaigns.py [--members 1000000] [--chunk 5000] [--profile N]
                                        [--keep]

1. A fresh ``scrm_bench_campaigns`` database (``bench.common.database_create``: owned by the
   application role ``scrm``, so row-level security applies as in production), a tenant and
   ``--members`` members inserted set-based in SQL (as ``bench/coupons.py``, but with
   marketing consent, so the campaign reaches them), analysed; the audience index rebuilt.
2. In a child process of its own (so its peak RSS is the run's): a coupon template with
   stock for everyone, a segment of all members, a campaign with one coupon action, launched
   for a time in the future (so the launch queues nothing) and then run by calling the
   worker's task, ``campaign_run_task``, in this process: it takes the segment's snapshot
   and goes through it chunk by chunk (``--chunk``), each chunk one transaction writing the
   coupons, their timeline events and the delivery rows.  A thread samples the RSS every
   0.2 s; each chunk's time is split into the coupon action and the rest (the members read,
   the frequency cap, the delivery rows, the checkpoint).
3. Prints the wall time, members reached, coupons issued, delivery rows, the RSS samples
   (first chunk, median, peak, end: flat memory means they agree), the CPU split between
   this Python process and its PostgreSQL backend, and ``uptime`` before and after;
   with ``--profile N``, the run's top N Python functions by own time (cProfile).

Everything goes to stdout and to ``bench/out/campaigns.txt``.  The database is dropped
unless ``--keep``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_create, database_drop, timed_run  # noqa: E402

DATABASE = "scrm_bench_campaigns"
OUT = ROOT / "bench" / "out" / "campaigns.txt"
HOST = "127.0.0.1"

MEMBERS_SQL = """
INSERT INTO members_member (tenant_id, member_no, name, gender, province, city,
    phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
    marketing_consent, status, created_at, updated_at)
SELECT %(tenant)s, n, '', 'unknown', '', '', '', '', '', 'api', '{}', true, 'active', now(),
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


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def django_env(url: str) -> dict:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
            "LOG_LEVEL": "WARNING", "CELERY_TASK_ALWAYS_EAGER": "true", "REDIS_URL": ""}


def admin_connection_to(database: str):
    import psycopg2

    connection = psycopg2.connect(host=HOST, dbname=database,
                                  user=os.environ.get("PGADMIN_USER", "postgres"))
    connection.autocommit = True
    return connection


REBUILD = """
import time
import django
django.setup()
from scrm.models import Tenant
from scrm.tenancy import tenant_scope
from tags.audience.index import audience_rebuild
with tenant_scope(Tenant.objects.get(slug="bench")):
    started = time.perf_counter()
    built = audience_rebuild()
print(built["members"], time.perf_counter() - started)
"""


def members_make(url: str, *, members: int, report: Report) -> None:
    started = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", "create_tenant", "bench", "--name", "Bench",
                    "--owner-email", "owner@bench.test"], cwd=ROOT, env=django_env(url),
                   check=True, stdout=subprocess.DEVNULL)
    connection = admin_connection_to(DATABASE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM scrm_tenant WHERE slug = 'bench'")
        tenant = cursor.fetchone()[0]
        cursor.execute(MEMBERS_SQL, {"tenant": tenant, "members": members})
        cursor.execute("VACUUM ANALYZE members_member")
    connection.close()
    report.line(f"{members:,} members (SQL): {time.perf_counter() - started:.1f} s")
    wall, peak_mb, stdout = timed_run([PYTHON, "-c", REBUILD], env=django_env(url))
    indexed, seconds = stdout.split()[-2:]
    report.line(f"audience index rebuild: {int(indexed):,} members in {float(seconds):.1f} s, "
                f"peak RSS {peak_mb} MB")


# The child: one campaign run through the worker's task, timed chunk by chunk.
CHILD = """
import json, os, resource, statistics, sys, threading, time
from datetime import timedelta
import django
django.setup()
from django.db import connection
from django.utils import timezone
import campaigns.services.campaigns as runner
from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupon_template_save
from campaigns.coupons.services.common import system_actor
from campaigns.models import CampaignRun, Delivery
from campaigns.services.campaigns import campaign_launch, campaign_save
from campaigns.tasks import campaign_run_task
from scrm.models import Tenant
from scrm.tenancy import tenant_scope
from tags.services.segments import segment_save

members, chunk = int(sys.argv[1]), int(sys.argv[2])
PAGE = os.sysconf("SC_PAGE_SIZE")
def cpu(pid="self"):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20

samples, stop = [], threading.Event()
def sample():
    while not stop.wait(0.2):
        samples.append(round(rss_mb(), 1))

chunks = []  # (seconds, seconds in the coupon action, RSS after)
action_seconds = [0.0]
plain_chunk, plain_apply = runner._chunk, runner.action_apply
def timed_apply(**kwargs):
    started = time.perf_counter()
    try:
        return plain_apply(**kwargs)
    finally:
        action_seconds[0] += time.perf_counter() - started
def timed_chunk(**kwargs):
    action_seconds[0] = 0.0
    started = time.perf_counter()
    plain_chunk(**kwargs)
    chunks.append((time.perf_counter() - started, action_seconds[0], rss_mb()))
runner._chunk, runner.action_apply = timed_chunk, timed_apply

tenant = Tenant.objects.get(slug="bench")
with tenant_scope(tenant):
    actor = system_actor()
    coupon_template_save(actor=actor, changes={
        "code": "bench-campaign", "name": "满 100 减 10", "kind": "fixed", "amount_fen": 1000,
        "threshold_fen": 10000, "validity": "relative", "valid_days": 30,
        "total_stock": members, "per_member_limit": 1})
    segment = segment_save(actor=actor, name="全部会员",
                           expression={"field": "source_channel", "op": "eq", "value": "api"})
    campaign = campaign_save(actor=actor, changes={
        "name": "百万会员回馈", "segment": segment, "schedule": "at",
        "start_at": timezone.now() + timedelta(hours=1), "respect_quiet_hours": False},
        actions=[{"kind": "coupon", "params": {"template": "bench-campaign"}}])
    run = campaign_launch(actor=actor, campaign=campaign)
    CampaignRun.objects.filter(pk=run.pk).update(next_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
rss_before = rss_mb()
threading.Thread(target=sample, daemon=True).start()
cpu_before = (cpu(), cpu(backend))
started = time.perf_counter()
profiler = None
if len(sys.argv) > 3:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
campaign_run_task(tenant.pk, run.pk)  # what the worker does with the dispatched task
if profiler is not None:
    profiler.disable()
elapsed = time.perf_counter() - started
cpu_python, cpu_postgres = cpu() - cpu_before[0], cpu(backend) - cpu_before[1]
stop.set()
with tenant_scope(tenant):
    run.refresh_from_db()
    check = {"status": run.status, "counts": run.counts, "done": run.done,
             "deliveries": Delivery.objects.count(),
             "sent": Delivery.objects.filter(status="sent").count(),
             "coupons": Coupon.objects.count(),
             "codes": Coupon.objects.values("code").distinct().count()}
seconds = [c[0] for c in chunks]
profile = []
if profiler is not None:
    import io, pstats
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(int(sys.argv[3]))
    profile = [line for line in text.getvalue().splitlines() if line.strip()][-int(sys.argv[3]):]
print(json.dumps({
    "seconds": elapsed, "chunks": len(chunks), "chunk_seconds_sum": sum(seconds),
    "chunk_median": statistics.median(seconds), "chunk_min": min(seconds),
    "chunk_max": max(seconds), "action_seconds_sum": sum(c[1] for c in chunks),
    "first_chunks": [[round(s, 3), round(a, 3)] for s, a, _r in chunks[:3]],
    "last_chunks": [[round(s, 3), round(a, 3)] for s, a, _r in chunks[-3:]],
    "rss_before_mb": rss_before, "rss_first_chunk_mb": chunks[0][2],
    "rss_median_mb": statistics.median(samples or [rss_before]),
    "rss_peak_sampled_mb": max(samples or [rss_before]), "rss_end_mb": rss_mb(),
    "rss_every_tenth_chunk_mb": [round(c[2]) for c in chunks[::max(len(chunks) // 10, 1)]],
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "cpu_python": cpu_python, "cpu_postgres": cpu_postgres, "profile": profile, **check}))
"""


def campaign(url: str, *, members: int, chunk: int, report: Report, profile: int) -> dict:
    command = [PYTHON, "-c", CHILD, str(members), str(chunk)] + ([str(profile)] if profile
                                                                  else [])
    wall, peak_mb, stdout = timed_run(command, env=django_env(url))
    r = json.loads(stdout.strip().splitlines()[-1])
    report.line(f"campaign run ({r['status']}): {r['sent']:,} members reached, "
                f"{r['coupons']:,} coupons ({r['codes']:,} distinct codes), "
                f"{r['deliveries']:,} delivery rows in {r['seconds']:.1f} s "
                f"({r['sent'] / r['seconds']:,.0f} members/s); counts {r['counts']}")
    report.line(f"  {r['chunks']} chunks of {chunk:,}: {r['chunk_seconds_sum']:.1f} s in "
                f"chunks (the coupon action {r['action_seconds_sum']:.1f} s, the rest "
                f"{r['chunk_seconds_sum'] - r['action_seconds_sum']:.1f} s), the snapshot and "
                f"bookkeeping {r['seconds'] - r['chunk_seconds_sum']:.1f} s; seconds a chunk: "
                f"min {r['chunk_min']:.2f}, median {r['chunk_median']:.2f}, max "
                f"{r['chunk_max']:.2f}; first [chunk, coupon action] {r['first_chunks']}, "
                f"last {r['last_chunks']}")
    report.line(f"  RSS: {r['rss_before_mb']:.0f} MB before, {r['rss_first_chunk_mb']:.0f} MB "
                f"after the first chunk, median {r['rss_median_mb']:.0f} MB, sampled peak "
                f"{r['rss_peak_sampled_mb']:.0f} MB, {r['rss_end_mb']:.0f} MB at the end "
                f"(process peak {peak_mb} MB); every tenth chunk "
                f"{r['rss_every_tenth_chunk_mb']}")
    spent = r["cpu_python"] + r["cpu_postgres"]
    report.line(f"  CPU: {r['cpu_python']:.1f} s Python + {r['cpu_postgres']:.1f} s PostgreSQL "
                f"backend = {spent:.1f} s ({spent / max(r['sent'], 1) * 1e6:.0f} µs a member); "
                f"process wall {wall:.1f} s")
    if r["profile"]:
        report.line("  Python profile of the run (cProfile, by own time; it slows Python):")
        for line in r["profile"]:
            report.line(f"    {line}")
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=5000,
                        help="members a transaction (campaigns.services.campaigns.CHUNK)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile the run with cProfile and print its top N functions")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    report = Report()
    report.line(f"# bench/campaigns.py {' '.join(sys.argv[1:])}")
    report.line(f"# start {datetime.now(UTC).isoformat(timespec='seconds')}: {uptime()}")
    url = database_create(DATABASE)
    try:
        members_make(url, members=args.members, report=report)
        report.line(f"# before the run: {uptime()}")
        campaign(url, members=args.members, chunk=args.chunk, report=report,
                 profile=args.profile)
    finally:
        if not args.keep:
            database_drop(DATABASE)
    report.line(f"# end {datetime.now(UTC).isoformat(timespec='seconds')}: {uptime()}")


if __name__ == "__main__":
    main()
