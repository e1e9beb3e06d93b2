"""pytest plugin (``-p scrm.testing``): use the real PostgreSQL and Redis when they answer on
localhost, and say plainly when they do not.

PostgreSQL: the tests connect as ``scrm``, a role without SUPERUSER or BYPASSRLS, so
row-level security applies to them exactly as to the app.  The role is created here (over
trust auth as ``postgres``) when missing.
"""

import os

import pytest

from scrm.devdb import postgres_prepare, redis_available

_notes: list[str] = []

if "DATABASE_URL" not in os.environ:
    url = postgres_prepare()
    if url:
        os.environ["DATABASE_URL"] = url
        # One test database per run, so parallel runs on one machine never collide.
        os.environ.setdefault("TEST_DATABASE_NAME", f"test_scrm_{os.getpid()}")
    else:
        _notes.append("PostgreSQL does not answer on localhost:5432: tests ran on SQLite, and "
                      "the tests marked 'postgres' (row-level security, concurrency) were "
                      "skipped.")
if "REDIS_URL" not in os.environ:
    if redis_available("redis://127.0.0.1:6379/15"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    else:
        _notes.append("Redis does not answer on localhost:6379: the cache ran in memory.")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
# Every test client calls from 127.0.0.1: the rate limits and the sign-in lockout are off
# unless a test turns them on (tests/scrm/test_throttling.py, test_lockout.py).
os.environ.setdefault("API_RATE_LIMIT_ENABLED", "false")
if not os.path.exists("/usr/bin/chromium"):
    _notes.append("Chromium is not installed (/usr/bin/chromium; apt-get install chromium "
                  "fonts-noto-cjk): the browser tests (marked 'browser') were skipped.")


def pytest_collection_modifyitems(config, items):
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL on localhost:5432")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    for note in _notes:
        terminalreporter.write_line(f"NOTE: {note}", yellow=True)
