"""What the newer benchmarks share, next to ``bench.orders_bulk``'s database, server and CPU
helpers: dropping a bench database, and running a command for its time and peak memory."""

import subprocess
import sys
from pathlib import Path

from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.orders_bulk import PYTHON, admin_connection, database_create  # noqa: E402, F401


def database_drop(name: str) -> None:
    admin = admin_connection()
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
