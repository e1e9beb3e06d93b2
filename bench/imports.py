"""Import of members from a CSV file, as the import job runs it (issue 8: 1M rows ≤ 5 min).

    .venv/bin/python bench/imports.py [--rows 1000000] [--database scrm_bench_transfers]
                                      [--points 0.3] [--tags 0.2] [--again] [--keep]

Makes a fresh database (default ``scrm_bench_transfers``, owned by the application role, so
row-level security applies; not ``scrm_bench``, which other benchmarks use), a tenant, and a
CSV of ``--rows`` members as Excel would write it (UTF-8 with a BOM): phone, name, gender,
birthday, city, an OA openid for half of them, a tag for ``--tags`` of them and an opening
points balance for ``--points`` of them.  Then, in a separate process (as a worker would):
upload (hash, header, guessed mapping), dry run, and run, each timed, with the process's
peak memory.  ``--again`` uploads and runs the same file a second time (it must change
nothing).  Prints the figures and checks the counts; drops the database unless ``--keep``.
"""

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_create, database_drop, timed_run  # noqa: E402

DATABASE = "scrm_bench_transfers"
CITIES = ("上海", "杭州", "北京", "深圳", "成都", "南京", "武汉", "西安")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "186", "188", "187")

WORKER = """
import json, os, sys, time
import django
django.setup()
from django.core.files import File
from integrations.transfers.models import ImportFile
from integrations.transfers.services import imports
from scrm.access import ALL_SCOPES, Actor
from scrm.models import Job, Tenant
from scrm.tenancy import tenant_scope

path, dry_run = sys.argv[1], sys.argv[2] == "1"
tenant = Tenant.objects.get(slug="bench")
actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
times = {}
with tenant_scope(tenant):
    started = time.perf_counter()
    with open(path, "rb") as handle:
        upload = imports.import_upload(actor=actor, kind="members",
                                       upload=File(handle, name="members.csv"))
    times["upload"] = time.perf_counter() - started
    if dry_run:
        started = time.perf_counter()
        imports.import_check_start(actor=actor, upload=upload)  # runs in-process (eager)
        times["dry_run"] = time.perf_counter() - started
        upload.refresh_from_db()
    started = time.perf_counter()
    imports.import_run_start(actor=actor, upload=upload)
    times["run"] = time.perf_counter() - started
    upload = ImportFile.objects.select_related("run_job", "check_job").get(pk=upload.pk)
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{backend}/stat") as stat:  # PostgreSQL runs on this machine
        fields = stat.read().rsplit(")", 1)[1].split()
    times["cpu_python"] = time.process_time()
    times["cpu_postgres"] = (int(fields[11]) + int(fields[12])) / ticks
    print(json.dumps({"times": times, "status": upload.status,
                      "check": upload.check_job.result if upload.check_job else None,
                      "result": upload.run_job.result, "error": upload.run_job.error}))
"""

TENANT = """
import django
django.setup()
from scrm.services import tenant_create
tenant_create(slug="bench", name="Bench", owner_email="o@bench.test")
"""

TABLES = ("members_member", "members_memberidentity", "tags_membertag", "points_pointsentry",
          "transfers_importissue")


def counts_of(database: str) -> dict:
    """Row counts as the superuser sees them (row-level security does not apply to it)."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", user=os.environ.get("PGADMIN_USER",
                                                                        "postgres"),
                                  dbname=database)
    counts = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own names
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(sum(balance), 0) FROM points_pointsaccount")
        counts["points_balance"] = int(cursor.fetchone()[0])
    connection.close()
    return counts


def csv_write(path: Path, *, rows: int, points: float, tags: float, seed: int = 7) -> dict:
    """The file, and what it should land (members, identities, tags, balances)."""
    rng = random.Random(seed)
    expected = {"members": rows, "identities": 0, "tags": 0, "points": 0, "balance": 0}
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "性别", "生日", "城市", "openid:wxbench", "标签",
                         "期初积分"])
        for n in range(rows):
            phone = f"{PREFIXES[n % len(PREFIXES)]}{n // len(PREFIXES):08d}"
            openid = f"o{n:012d}" if n % 2 == 0 else ""
            tag = "会员等级:VIP" if rng.random() < tags else ""
            balance = rng.randint(1, 5000) if rng.random() < points else 0
            writer.writerow([phone, rng.choice(SURNAMES) + "某", rng.choice("男女"),
                             f"19{rng.randint(60, 99)}-{rng.randint(1, 12):02d}-"
                             f"{rng.randint(1, 28):02d}", rng.choice(CITIES), openid, tag,
                             balance or ""])
            expected["identities"] += 2 if openid else 1
            expected["tags"] += bool(tag)
            expected["points"] += bool(balance)
            expected["balance"] += balance
    return expected


def django_run(code: str, url: str, *args: str) -> str:
    import subprocess

    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
           "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "true", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([PYTHON, "-c", code, *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--points", type=float, default=0.3)
    parser.add_argument("--tags", type=float, default=0.2)
    parser.add_argument("--no-dry-run", action="store_true")
    parser.add_argument("--again", action="store_true")
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()

    url = database_create(options.database)
    django_run(TENANT, url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    path = workdir / "members.csv"
    started = time.perf_counter()
    expected = csv_write(path, rows=options.rows, points=options.points, tags=options.tags)
    print(f"file: {options.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB, written in "
          f"{time.perf_counter() - started:.1f}s")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
           "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "true", "LOG_LEVEL": "WARNING",
           "MEDIA_ROOT": str(workdir / "media")}
    try:
        rounds = ["first", "again"] if options.again else ["first"]
        for name in rounds:
            wall, peak_mb, out = timed_run(
                [PYTHON, "-c", WORKER, str(path), "0" if options.no_dry_run else "1"], env=env)
            report = json.loads(out.strip().splitlines()[-1])
            times = report["times"]
            print(f"{name}: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items())
                  + f"; process {wall:.1f}s, peak RSS {peak_mb} MB; status {report['status']}")
            print(f"  result: {report['result']}" + (f" error: {report['error']}"
                                                     if report["error"] else ""))
            if "run" in times:
                print(f"  run: {options.rows / times['run']:,.0f} rows/s")
        counts = counts_of(options.database)
        print(f"landed: {counts}")
        assert counts["members_member"] == expected["members"], expected
        assert counts["members_memberidentity"] == expected["identities"], expected
        assert counts["tags_membertag"] == expected["tags"], expected
        assert counts["points_pointsentry"] == expected["points"], expected
        assert counts["points_balance"] == expected["balance"], expected
        print("counts: as expected")
    finally:
        for file in workdir.rglob("*"):
            if file.is_file():
                file.unlink()
        if not options.keep:
            database_drop(options.database)


if __name__ == "__main__":
    main()
