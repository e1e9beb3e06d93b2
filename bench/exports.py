"""Export of members to CSV, as the export job runs it (issue 8: 1M members ≤ 2 min).

    .venv/bin/python bench/exports.py [--members 1000000] [--orders 0]
                                      [--database scrm_bench_transfers] [--full-phone] [--keep]

Makes a fresh database (default ``scrm_bench_transfers``, owned by the application role, so
row-level security applies; not ``scrm_bench``, which other benchmarks use), generates a
tenant of ``--members`` members with ``manage.py generate_tenant``, then, in a separate
process (as a worker would), exports the members (masked phones, or decrypted ones with
``--full-phone``), and the orders when there are any, each timed with the process's CPU time,
its PostgreSQL backend's and its peak memory (which must stay flat: rows are streamed from a
server-side cursor into the file).  Checks the file's row count; drops the database unless
``--keep``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, database_create, database_drop, timed_run  # noqa: E402

DATABASE = "scrm_bench_transfers"

WORKER = """
import json, os, sys, time
import django
django.setup()
from django.core.files.storage import default_storage
from django.db import connection
from integrations.transfers.services import exports
from scrm.access import ALL_SCOPES, PII_READ, Actor
from scrm.models import Job, Tenant
from scrm.tenancy import tenant_scope

kinds, full_phone = sys.argv[1].split(","), sys.argv[2] == "1"
tenant = Tenant.objects.get(slug="bench")
scopes = set(ALL_SCOPES) if full_phone else set(ALL_SCOPES) - {PII_READ}
actor = Actor(tenant=tenant, scopes=frozenset(scopes))
report = {}
with tenant_scope(tenant):
    for kind in kinds:
        started, cpu = time.perf_counter(), time.process_time()
        job = exports.export_create(actor=actor, kind=kind)  # the task runs in-process
        job = Job.objects.get(pk=job.pk)
        with default_storage.open(job.result["file"], "rb") as handle:
            lines = sum(1 for _line in handle)
        report[kind] = {"seconds": time.perf_counter() - started,
                        "cpu_python": time.process_time() - cpu, "rows": job.result["rows"],
                        "lines": lines, "status": job.status, "error": job.error,
                        "mb": default_storage.size(job.result["file"]) / 1e6}
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]
with open(f"/proc/{backend}/stat") as stat:  # PostgreSQL runs on this machine
    fields = stat.read().rsplit(")", 1)[1].split()
report["cpu_postgres"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
print(json.dumps(report))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=0)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--full-phone", action="store_true")
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()

    url = database_create(options.database)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "scrm.settings",
           "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "true", "LOG_LEVEL": "WARNING",
           "MEDIA_ROOT": str(workdir)}
    try:
        generated, _peak, _out = timed_run(
            [PYTHON, "manage.py", "generate_tenant", "bench", "--members",
             str(options.members), "--orders", str(options.orders)], env=env)
        print(f"generated {options.members:,} members, {options.orders:,} orders in "
              f"{generated:.0f}s")
        kinds = "members,orders" if options.orders else "members"
        wall, peak_mb, out = timed_run(
            [PYTHON, "-c", WORKER, kinds, "1" if options.full_phone else "0"], env=env)
        report = json.loads(out.strip().splitlines()[-1])
        for kind in kinds.split(","):
            figures = report[kind]
            print(f"{kind}: {figures['rows']:,} rows, {figures['mb']:.0f} MB in "
                  f"{figures['seconds']:.1f}s ({figures['rows'] / figures['seconds']:,.0f} "
                  f"rows/s), python CPU {figures['cpu_python']:.1f}s; {figures['status']}"
                  f"{' ' + figures['error'] if figures['error'] else ''}")
            assert figures["lines"] == figures["rows"] + 1, figures
        print(f"process {wall:.1f}s, peak RSS {peak_mb} MB, PostgreSQL backend CPU "
              f"{report['cpu_postgres']:.1f}s")
    except subprocess.CalledProcessError as exc:
        print(exc.stderr[-3000:])
        raise
    finally:
        for file in sorted(workdir.rglob("*"), reverse=True):
            file.unlink() if file.is_file() else file.rmdir()
        if not options.keep:
            database_drop(options.database)


if __name__ == "__main__":
    main()
