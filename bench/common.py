"""What the benchmarks share: a fresh database owned by the application role (so row-level
security applies as in production), and the project's Python."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrm.devdb import ROLE, postgres_prepare  # noqa: E402

HOST = "127.0.0.1"
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


def timed_run(command: list[str], *, env: dict, cwd: Path = ROOT) -> tuple[float, int, str]:
    """Run ``command``; (wall seconds, its peak RSS in MB, its stdout)."""
    import tempfile
    import time

    report = tempfile.NamedTemporaryFile(suffix=".rss", delete=False)  # noqa: SIM115
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                            cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_kb = int(Path(report.name).read_text().strip().splitlines()[-1])
    Path(report.name).unlink()
    return wall, peak_kb // 1024, result.stdout
