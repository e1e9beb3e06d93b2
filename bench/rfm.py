"""RFM and lifecycle at scale: a full recompute over a generated tenant of 1M members and
10M orders, next to the bare aggregate over the same orders.

    .venv/bin/python bench/rfm.py [--members 1000000] [--orders 10000000] [--reuse] [--keep]

Makes a fresh ``scrm_bench_rfm`` database owned by the application role and builds the
tenant with ``manage.py generate_tenant`` (6-9 minutes on an idle machine); ``--reuse``
takes the database a previous ``--keep`` run left, after clearing what RFM and lifecycle
wrote to it.  Then, in this process, as the application role under row-level security:

1. the bare aggregate ``SELECT member_id, max(paid_at), count(*), sum(amount_fen -
   refunded_fen) FROM members_order WHERE paid_at >= ... GROUP BY member_id`` (parallel, as
   PostgreSQL plans it, and serial), and its plan with times;
2. the first RFM run (cold: every member row, the history and ~830k tag rows written), then
   the first lifecycle pass (every member's stage and stage tag);
3. a day later, after ``--new-orders`` new orders and ``--refunds`` full refunds: a second
   run (few changes) and a second lifecycle pass;
4. the write-back strategies on the second run's data, each rolled back: the diff the
   service uses, ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM`` over
   every member, and delete-and-insert (a swap of the tenant's rows); cold and warm.

Prints wall time, the CPU time of the PostgreSQL backend and of Python, and the load
average around each step, and writes it all to ``bench/out/rfm.txt``.
"""

import argparse
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PYTHON,
    admin_connection,
    database_create,
    database_drop,
    timed_run,  # noqa: E402
)
from scrm.devdb import ROLE  # noqa: E402

DATABASE = "scrm_bench_rfm"
URL = f"postgres://{ROLE}@127.0.0.1:5432/{DATABASE}"
OUT = ROOT / "bench" / "out" / "rfm.txt"
SLUG = "bench"

BARE = """
SELECT member_id, max(paid_at), count(*), sum(amount_fen - refunded_fen)
FROM members_order WHERE tenant_id = %(tenant)s AND paid_at >= %(since)s GROUP BY member_id
"""

UPSERT_ALL = """
INSERT INTO rfm_memberrfm AS t (tenant_id, member_id, member_no, last_order_at, frequency,
    monetary_fen, r, f, m, segment, previous_segment, segment_run_id, updated_at)
SELECT %(tenant)s, member_id, member_no, last_order_at, frequency, monetary_fen, r, f, m,
       segment, '', %(run)s, %(now)s FROM bench_scored
ON CONFLICT (tenant_id, member_id) DO UPDATE SET
    member_no = EXCLUDED.member_no, last_order_at = EXCLUDED.last_order_at,
    frequency = EXCLUDED.frequency, monetary_fen = EXCLUDED.monetary_fen, r = EXCLUDED.r,
    f = EXCLUDED.f, m = EXCLUDED.m, segment = EXCLUDED.segment,
    previous_segment = CASE WHEN t.segment = EXCLUDED.segment THEN t.previous_segment
                            ELSE t.segment END,
    updated_at = EXCLUDED.updated_at
WHERE (t.member_no, t.last_order_at, t.frequency, t.monetary_fen, t.r, t.f, t.m, t.segment)
      IS DISTINCT FROM (EXCLUDED.member_no, EXCLUDED.last_order_at, EXCLUDED.frequency,
                        EXCLUDED.monetary_fen, EXCLUDED.r, EXCLUDED.f, EXCLUDED.m,
                        EXCLUDED.segment)
"""

SWAP = """
DELETE FROM rfm_memberrfm WHERE tenant_id = %(tenant)s;
INSERT INTO rfm_memberrfm (tenant_id, member_id, member_no, last_order_at, frequency,
    monetary_fen, r, f, m, segment, previous_segment, segment_run_id, updated_at)
SELECT %(tenant)s, member_id, member_no, last_order_at, frequency, monetary_fen, r, f, m,
       segment, '', %(run)s, %(now)s FROM bench_scored
"""

RESET = """
DELETE FROM tags_audiencebitmap WHERE field = 'tag' AND value IN (
    SELECT id::text FROM tags_tag WHERE external_source IN ('rfm', 'lifecycle'));
DELETE FROM tags_membertag WHERE tag_id IN (
    SELECT id FROM tags_tag WHERE external_source IN ('rfm', 'lifecycle'));
DELETE FROM tags_tag WHERE external_source IN ('rfm', 'lifecycle');
DELETE FROM tags_taggroup WHERE name IN ('RFM', '生命周期');
DELETE FROM members_timelineevent WHERE kind = 'lifecycle.changed';
DELETE FROM members_order WHERE order_no LIKE 'BENCH-%%';
TRUNCATE rfm_memberrfm, rfm_memberlifecycle, rfm_rfmrunsegment, rfm_rfmrun, rfm_rfmconfig,
         rfm_lifecycleconfig;
DELETE FROM scrm_job WHERE kind = 'rfm_run';
"""


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self) -> None:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text("\n".join(self.lines) + "\n")


report = Report()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


# ---- the database --------------------------------------------------------------------

def _admin_connection(database: str = DATABASE):
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", user=os.environ.get("PGADMIN_USER",
                                                                        "postgres"),
                                  dbname=database)
    connection.autocommit = True
    return connection


def _admin(sql: str, params=None, database: str = DATABASE):
    connection = _admin_connection(database)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else None
    connection.close()
    return rows


def _generated(members: int) -> bool:
    exists = _admin("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE], "postgres")
    if not exists:
        return False
    found = _admin("SELECT count(*) FROM members_member m JOIN scrm_tenant t "
                   "ON t.id = m.tenant_id WHERE t.slug = %s", [SLUG])
    return found[0][0] == members


def database_ready(*, members: int, orders: int, reuse: bool) -> None:
    env = {**os.environ, "DATABASE_URL": URL, "LOG_LEVEL": "WARNING"}
    if reuse and _generated(members):
        timed_run([PYTHON, "manage.py", "migrate", "-v", "0"], env=env)
        _admin(RESET)
        _admin("VACUUM ANALYZE tags_membertag, members_timelineevent, members_order, "
               "members_member, members_memberstats")
        report(f"reused {DATABASE} (RFM and lifecycle state cleared)")
        return
    database_create(DATABASE)
    report(f"generate_tenant {SLUG} --members {members:,} --orders {orders:,} ({load()})")
    wall, peak, output = timed_run(
        [PYTHON, "manage.py", "generate_tenant", SLUG, "--members", str(members),
         "--orders", str(orders), "-v", "0"], env=env)
    report(f"  generated in {wall:.0f} s (peak RSS {peak} MB); {load()}")
    for line in output.splitlines():
        if line.startswith("phase "):
            report(f"  {line}")
    _admin("VACUUM ANALYZE")


# ---- measuring -----------------------------------------------------------------------

def django_setup() -> None:
    os.environ["DATABASE_URL"] = URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu(threading.Thread):
    """The CPU time of every backend serving the bench database (the run's own and its
    parallel workers), polled from /proc while a step runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stopped = threading.Event()
        self.connection = _admin_connection()
        self._poll(first=True)

    def _poll(self, first: bool = False) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                           "backend_type IN ('client backend', 'parallel worker') "
                           "AND pid <> pg_backend_pid()", [DATABASE])
            for (pid,) in cursor.fetchall():
                seconds = cpu_seconds(pid)
                if seconds is None:
                    continue
                if pid not in self.first:
                    self.first[pid] = seconds if first else 0.0
                self.last[pid] = seconds

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self._poll()

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        self._poll()
        self.connection.close()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


class Step:
    """Wall time, PostgreSQL and Python CPU, and the load average, of one step."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> "Step":
        from django.db import connection

        connection.ensure_connection()
        self.meter = BackendCpu()
        self.meter.start()
        self.before = (time.perf_counter(), time.process_time())
        self.load = load()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.before[0]
        python = time.process_time() - self.before[1]
        self.cpu = self.meter.stop()
        report(f"{self.label}: {self.wall:.2f} s wall; CPU {self.cpu:.2f} s PostgreSQL "
               f"(backend and parallel workers) + {python:.2f} s Python ({self.load} before, "
               f"{load()} after)")


def bare_aggregate(tenant_id: int, since) -> None:
    from django.db import connection, transaction

    from campaigns.rfm.services.recompute import RUN_SETTINGS

    for label, extra in (("parallel (as planned)", ""),
                         ("serial", "SET LOCAL max_parallel_workers_per_gather = 0")):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(RUN_SETTINGS)
            if extra:
                cursor.execute(extra)
            with Step(f"bare aggregate, {label}"):
                # every column used, so the planner computes them all (as the client would)
                cursor.execute(f"SELECT count(*), sum(count), max(max), sum(sum) "  # noqa: S608
                               f"FROM ({BARE}) q", {"tenant": tenant_id, "since": since})
                groups, orders, _last, _spent = cursor.fetchone()
    report(f"  {groups:,} members with {orders:,} orders since {since:%Y-%m-%d %H:%M}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RUN_SETTINGS)
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {BARE}", {"tenant": tenant_id,
                                                             "since": since})
        report("  plan of the bare aggregate (EXPLAIN ANALYZE):")
        for (line,) in cursor.fetchall():
            if "->" in line or "Aggregate" in line or "Execution" in line:
                report(f"    {line.strip()[:150]}")


def rfm_run(label: str, now) -> object:
    from campaigns.rfm.services.runs import rfm_run_now

    with Step(label) as step:
        run = rfm_run_now(now=now)
    timings = ", ".join(f"{name} {ms / 1000:.2f}" for name, ms in run.timings.items())
    report(f"  steps (s): {timings}")
    report(f"  {run.members:,} members, {run.scored:,} scored, {run.changed:,} changed "
           f"segment; cuts {run.config['cuts']}")
    report(f"  counts {run.counts}")
    run.wall, run.cpu = step.wall, step.cpu
    return run


def lifecycle(label: str, now, rfm_run=None) -> None:
    from campaigns.rfm.services.lifecycle import lifecycle_pass

    with Step(label):
        result = lifecycle_pass(now=now, rfm_run=rfm_run)
    moves = {f"{old or '-'}→{new}": len(nos) for (old, new), nos in result.moves.items()}
    report(f"  {result.changed:,} members changed stage: {moves}")


def a_day_passes(tenant_id: int, now, *, orders: int, refunds: int) -> None:
    """New orders by random members within the day, and full refunds of random orders of the
    window; the member stats refreshed as ingest would."""
    from members.services.stats import member_stats_refresh

    touched = _admin("""
        WITH buyers AS (SELECT id FROM members_member WHERE tenant_id = %(t)s
                        ORDER BY random() LIMIT %(n)s)
        INSERT INTO members_order (tenant_id, member_id, channel, order_no, paid_at,
                                   amount_fen, refunded_fen, status, content_hash, created_at)
        SELECT %(t)s, id, 'pos', 'BENCH-' || id, %(now)s + random() * interval '1 day',
               1000 + (random() * 50000)::int, 0, 'paid', '-', now() FROM buyers
        RETURNING member_id""", {"t": tenant_id, "n": orders, "now": now})
    touched += _admin("""
        WITH victims AS (SELECT id FROM members_order WHERE tenant_id = %(t)s
                         AND status = 'paid' AND paid_at > %(now)s - interval '300 days'
                         ORDER BY random() LIMIT %(n)s)
        UPDATE members_order o SET refunded_fen = amount_fen, status = 'refunded'
        FROM victims v WHERE o.id = v.id RETURNING o.member_id""",
                      {"t": tenant_id, "n": refunds, "now": now})
    ids = sorted({member_id for (member_id,) in touched})
    for start in range(0, len(ids), 5000):
        member_stats_refresh(member_ids=ids[start:start + 5000])
    # overnight, autovacuum would have analyzed the tables the first run grew
    _admin("VACUUM ANALYZE tags_membertag, tags_audiencebitmap, rfm_memberrfm, "
           "rfm_memberlifecycle, members_order, members_memberstats")
    report(f"a day later: {orders:,} new orders, {refunds:,} full refunds "
           f"({len(ids):,} members); VACUUM ANALYZE (what autovacuum does overnight)")


def write_strategies(tenant_id: int, run, now) -> None:
    """The write-back strategies over the same scored members, each rolled back."""
    from django.db import connection, transaction

    from campaigns.rfm.models import RfmConfig
    from campaigns.rfm.services import recompute

    config = RfmConfig.objects.get()
    cuts = recompute.scoring.Cuts(**{k: tuple(v) for k, v in run.config["cuts"].items()})
    params = {"tenant": tenant_id, "now": now, "since": run.window_start, "run": run.pk}
    cut_params = recompute._cut_params(cuts, config)  # noqa: SLF001
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(recompute.RUN_SETTINGS)
        cursor.execute(recompute.STAGE_SQL, params)
        cursor.execute("ANALYZE rfm_stage")
        # every scored member, as the alternatives take them
        cursor.execute("CREATE TEMPORARY TABLE bench_scored AS WITH"  # noqa: S608
                       + recompute.SCORED_CTES
                       + " SELECT member_id, member_no, last_paid_at AS last_order_at, "
                         "frequency, monetary AS monetary_fen, r, f, m, segment FROM scored",
                       {**params, **cut_params})
        for label, sql in _strategies():
            for state in ("warm (rows as the last run left them)", "cold (no rows yet)"):
                cursor.execute("SAVEPOINT strategy")
                if state.startswith("cold"):
                    cursor.execute("DELETE FROM rfm_memberrfm WHERE tenant_id = %s",
                                   [tenant_id])
                started = time.perf_counter()
                for statement in sql:
                    cursor.execute(statement, {**params, **cut_params})
                report(f"  {label}, {state}: {time.perf_counter() - started:.2f} s")
                cursor.execute("ROLLBACK TO SAVEPOINT strategy")
        transaction.set_rollback(True)


def _strategies():
    from campaigns.rfm.services import recompute

    diff = [recompute.DIFF_SQL, "ANALYZE rfm_diff", recompute.INSERT_SQL,
            recompute.UPDATE_SQL, "DROP TABLE rfm_diff"]
    return [("diff, then INSERT new + UPDATE changed (the service)", diff),
            ("INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM", [UPSERT_ALL]),
            ("DELETE the tenant's rows + INSERT all (swap)", [SWAP])]


def measure(args) -> None:
    django_setup()
    from django.utils import timezone

    from scrm.models import Tenant
    from scrm.tenancy import tenant_scope, unscoped_access

    with unscoped_access("bench"):
        tenant = Tenant.objects.get(slug=SLUG)
    now = timezone.now().replace(microsecond=0)
    with tenant_scope(tenant):
        report()
        bare_aggregate(tenant.pk, now - timedelta(days=365))
        report()
        first = rfm_run("RFM run 1 (cold: member rows, history and tags all written)", now)
        lifecycle("lifecycle pass 1 (first: every member's stage and tag, no events; loyalty "
                  "window from the orders)", now)
        report()
        a_day_passes(tenant.pk, now, orders=args.new_orders, refunds=args.refunds)
        later = now + timedelta(days=1)
        bare_aggregate(tenant.pk, later - timedelta(days=365))
        second = rfm_run("RFM run 2 (a day later: few changes)", later)
        lifecycle("lifecycle pass 2 (a day later, as the daily job runs it: loyalty window "
                  "from run 2's member rows)", later, rfm_run=second)
        lifecycle("lifecycle pass 3 (the same moment again, standalone: loyalty window from "
                  "the orders; nothing changes)", later)
        report()
        report("write-back strategies over the same scored members (rolled back):")
        write_strategies(tenant.pk, second, later)
        report()
        report(f"summary: RFM run 1 {first.wall:.1f} s wall, {first.cpu:.1f} s PostgreSQL "
               f"CPU (tags {first.timings.get('tags', 0) / 1000:.1f} s wall); run 2 "
               f"{second.wall:.1f} s wall, {second.cpu:.1f} s PostgreSQL CPU; the bare "
               f"aggregate above, in the same process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--new-orders", type=int, default=10_000)
    parser.add_argument("--refunds", type=int, default=1_000)
    parser.add_argument("--reuse", action="store_true",
                        help="use the database a --keep run left (if it has the tenant)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    report(f"# bench/rfm.py --members {args.members:,} --orders {args.orders:,}; "
           f"{os.cpu_count()} cores; {load()}")
    admin_connection().close()
    database_ready(members=args.members, orders=args.orders, reuse=args.reuse)
    try:
        measure(args)
    finally:
        report(f"# end; {load()}")
        report.save()
        if not args.keep:
            database_drop(DATABASE)


if __name__ == "__main__":
    main()
