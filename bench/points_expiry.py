"""Points expiry at scale: ``points_expire`` over 1M members holding 10M lots.

    .venv/bin/python bench/points_expiry.py [--members 1000000] [--lots-per-member 10]
                                            [--due 0.1] [--batch 20000] [--shards 1] [--check]

Makes a fresh ``scrm_bench_points_expiry`` database (owned by the application role ``scrm``)
and migrates it.  The data is generated set-based in SQL (``INSERT … SELECT generate_series``)
over the PostgreSQL admin connection with foreign-key triggers off, which is only about
generating it faster: the measured run is the application's own ``points_expire``, as the
``scrm`` role, under row-level security.

Each member earns ``--lots-per-member`` lots of 100 points, in id order, one earn entry each
(key ``order:<n>``); the oldest ``--due`` share of the lots is past expiry (as after a quiet
period, or at the year end when a whole year's points expire).  ``--shards N`` runs N
processes side by side, each expiring the members with ``member_id % N == k``, as the
periodic task's per-tenant shards do on N Celery workers.  Prints the generation time, the
expiry time and rate and the CPU time spent, and with ``--check`` runs the drift check
afterwards.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrm.devdb import ROLE, postgres_prepare  # noqa: E402

HOST = "127.0.0.1"
DATABASE = "scrm_bench_points_expiry"
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def admin_connect(dbname: str = "postgres"):
    connection = psycopg2.connect(host=HOST, dbname=dbname,
                                  user=os.environ.get("PGADMIN_USER", "postgres"),
                                  password=os.environ.get("PGADMIN_PASSWORD"))
    connection.autocommit = True
    return connection


def database_create(name: str) -> str:
    """A fresh, migrated database owned by the application role; returns its URL."""
    if not postgres_prepare(HOST):
        raise SystemExit("PostgreSQL does not answer on 127.0.0.1:5432")
    admin = admin_connect()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(ROLE)))
    admin.close()
    url = f"postgres://{ROLE}@{HOST}:5432/{name}"
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT,
                   env={**os.environ, "DATABASE_URL": url}, check=True)
    return url


def database_drop(name: str) -> None:
    admin = admin_connect()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
    admin.close()


GENERATE = [
    ("tenant", """
        INSERT INTO scrm_tenant (slug, name, is_active, created_at)
        VALUES ('bench', 'Bench', true, now()) RETURNING id"""),
    ("members", """
        INSERT INTO members_member (tenant_id, member_no, name, gender, province, city,
            phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
            marketing_consent, status, created_at, updated_at)
        SELECT %(tenant)s, n, '', 'unknown', '', '', '', '', '', 'api', '{}', false, 'active',
               now(), now()
        FROM generate_series(1, %(members)s) AS n"""),
    ("entries", """
        INSERT INTO points_pointsentry (id, tenant_id, member_id, kind, points, balance_after,
            shortfall_delta, reason, ref_type, ref_id, operator, idempotency_key, created_at)
        SELECT n, %(tenant)s, %(first_member)s + (n - 1) %% %(members)s, 'earn', 100,
               100 * ((n - 1) / %(members)s + 1), 0, '订单积分', 'order', n::text, 'bench',
               'order:' || n, now() - interval '1 day' * ((%(lots)s - n) / %(members)s)
        FROM generate_series(1, %(lots)s) AS n"""),
    ("lots", """
        INSERT INTO points_pointslot (id, tenant_id, member_id, earned, remaining, earned_at,
            expires_at, source_entry_id, status)
        SELECT n, %(tenant)s, %(first_member)s + (n - 1) %% %(members)s, 100, 100,
               now() - interval '1 day' * ((%(lots)s - n) / %(members)s),
               now() + interval '1 second' * ((n - %(due_lots)s) * 63072000.0 / %(lots)s),
               n, 'active'
        FROM generate_series(1, %(lots)s) AS n"""),
    ("accounts", """
        INSERT INTO points_pointsaccount (tenant_id, member_id, balance, shortfall,
            lifetime_earned, is_active, created_at, updated_at)
        SELECT %(tenant)s, id, 100 * %(per_member)s, 0, 100 * %(per_member)s, true, now(),
               now()
        FROM members_member WHERE tenant_id = %(tenant)s"""),
    ("sequences", """
        SELECT setval(pg_get_serial_sequence('points_pointsentry', 'id'), %(lots)s),
               setval(pg_get_serial_sequence('points_pointslot', 'id'), %(lots)s)"""),
]


BULK_TABLES = ("points_pointsentry", "points_pointslot")

SAVED_SQL = """
SELECT 'c', conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
FROM pg_constraint
WHERE contype IN ('u', 'f') AND (conrelid = ANY(%(tables)s::regclass[])
                                 OR confrelid = ANY(%(tables)s::regclass[]))
UNION ALL
SELECT 'i', indrelid::regclass::text, indexrelid::regclass::text,
       pg_get_indexdef(indexrelid), ''
FROM pg_index
WHERE indrelid = ANY(%(tables)s::regclass[]) AND NOT indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
"""


def indexes_drop(cursor) -> list[str]:
    """Drop the bulk tables' secondary indexes and constraints (loading into an indexed
    table is several times slower than building the index after); returns what rebuilds
    them, foreign keys last."""
    cursor.execute(SAVED_SQL, {"tables": list(BULK_TABLES)})
    saved = cursor.fetchall()
    rebuild = []
    for kind, table, name, _definition, _type in sorted(saved, key=lambda r: r[4] != "f"):
        if kind == "c":
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        else:
            cursor.execute(f"DROP INDEX {name}")
    for kind, table, name, definition, _type in sorted(saved, key=lambda r: r[4] == "f"):
        if kind == "c":
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        else:
            rebuild.append(definition)
    return rebuild


def generate(*, members: int, per_member: int, due: float, database: str = DATABASE) -> int:
    """The tenant, members, earn entries, lots and accounts; returns the tenant id."""
    connection = admin_connect(database)
    lots = members * per_member
    params = {"members": members, "per_member": per_member, "lots": lots,
              "due_lots": int(lots * due)}
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers
        cursor.execute("SET maintenance_work_mem = '256MB'")
        rebuild = indexes_drop(cursor)
        for name, statement in GENERATE:
            started = time.perf_counter()
            cursor.execute(statement, params)
            if name == "tenant":
                params["tenant"] = cursor.fetchone()[0]
                cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM members_member")
                params["first_member"] = cursor.fetchone()[0]
            print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        cursor.execute("SET session_replication_role = DEFAULT")
        for statement in rebuild:
            cursor.execute(statement)
        print(f"  indexes and constraints rebuilt: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE points_pointslot, points_pointsentry, "
                       "points_pointsaccount, members_member")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s", flush=True)
    connection.close()
    return params["tenant"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (a PostgreSQL backend, say)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


def expire_shard(url: str, tenant_id: int, batch: int, shard: int, shards: int, start,
                 results) -> None:
    """One worker: its shard of the members, timed in CPU seconds (its backend and itself)."""
    django_setup(url)
    from django.db import connection

    from points.services import points_expire
    from scrm.tenancy import tenant_scope

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    start.wait()
    cpu = cpu_seconds(backend) + time.process_time()
    with tenant_scope(tenant_id):
        lots, points = points_expire(batch_size=batch, shard=(shard, shards))
    results.put((lots, points, cpu_seconds(backend) + time.process_time() - cpu))


def expire(url: str, tenant_id: int, *, batch: int, shards: int, check: bool) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=expire_shard,
                               args=(url, tenant_id, batch, shard, shards, start, results))
               for shard in range(shards)]
    for worker in workers:
        worker.start()
    time.sleep(5)  # every worker has set Django up
    started = time.perf_counter()
    start.set()
    done = [results.get() for _worker in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    lots, points, cpu = (sum(column) for column in zip(*done, strict=True))
    print(f"expired {lots:,} lots ({points:,} points) in {elapsed:.1f} s with {shards} "
          f"worker(s): {lots / elapsed:,.0f} lots/s; CPU {cpu:.1f} s (PostgreSQL backends + "
          f"Python), {cpu / max(lots, 1) * 1e6:.0f} µs a lot", flush=True)
    django_setup(url)
    from points.selectors import ledger_drift
    from points.services import points_expire
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant_id):
        started = time.perf_counter()
        again = points_expire(batch_size=batch)
        print(f"second run: {again[0]} lots in {time.perf_counter() - started:.2f} s (the "
              "lots that fell due since the first one started)")
        if check:
            started = time.perf_counter()
            drift = ledger_drift()
            print(f"drift check: {len(drift)} members drifted "
                  f"({time.perf_counter() - started:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--lots-per-member", type=int, default=10)
    parser.add_argument("--due", type=float, default=0.1, help="share of lots past expiry")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=1, help="worker processes")
    parser.add_argument("--check", action="store_true", help="run the drift check after")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not 1 <= args.members <= 5_000_000 or not 1 <= args.lots_per_member <= 50:
        raise SystemExit("--members must be 1..5,000,000 and --lots-per-member 1..50")
    if not 0 <= args.due <= 1 or not 1 <= args.shards <= 16:
        raise SystemExit("--due must be 0..1 and --shards 1..16")
    print(f"{args.members:,} members x {args.lots_per_member} lots, {args.due:.0%} due")
    url = database_create(DATABASE)
    try:
        started = time.perf_counter()
        tenant_id = generate(members=args.members, per_member=args.lots_per_member,
                             due=args.due)
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        expire(url, tenant_id, batch=args.batch, shards=args.shards, check=args.check)
    finally:
        if not args.keep:
            database_drop(DATABASE)


if __name__ == "__main__":
    main()
