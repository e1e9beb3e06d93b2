"""Many rows into a tenant table at once: PostgreSQL's COPY into a temporary staging table
(COPY refuses tables under row-level security) and one ``INSERT ... SELECT``, which the
tenant policy checks once per statement; ``executemany`` elsewhere (the SQLite quick start).
"""

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Model

COPY_BUFFER = 1 << 20
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """One value in COPY's text format (for payloads built by hand, like the generator's)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int | float | Decimal):
        return str(value)
    return str(value).translate(_ESCAPES)


NULL = "\\N"


def _csv_value(value: Any) -> Any:
    if value is None:
        return NULL
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def copy_payload(rows: Iterable[Sequence[Any]], *, plain: bool = False) -> bytes:
    """Rows in COPY's CSV format, written by the csv module (C speed): strings quoted, numbers
    and booleans bare, NULL as a quoted \\N that ``copy_insert(..., csv=True)`` turns back.
    ``plain``: the rows hold only strings and numbers (``NULL`` already in place), so no value
    is looked at in Python (measured: 2.5x faster on a million rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerows(rows if plain else ([_csv_value(v) for v in row] for row in rows))
    return buffer.getvalue().encode()


def copy_insert(cursor, *, model: type[Model], columns: Sequence[str], payload: bytes,
                on_conflict: str = "", csv_format: bool = False) -> int:
    """COPY ``payload`` (text format, or CSV from ``copy_payload``) into ``model``'s table;
    returns the rows inserted."""
    if not payload:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    stage = connection.ops.quote_name(f"stage_{model._meta.model_name}")
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    options = f" WITH (FORMAT csv, NULL '{NULL}', FORCE_NULL ({names}))" if csv_format else ""
    cursor.execute(f"DROP TABLE IF EXISTS {stage}")
    # Identifiers come from the models; no value is interpolated into these statements.
    cursor.execute(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {table} "  # noqa: S608
        f"WITH NO DATA"
    )
    cursor.copy_expert(f"COPY {stage} ({names}) FROM STDIN{options}", io.BytesIO(payload),
                       size=COPY_BUFFER)
    cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
                   f"{on_conflict}")
    inserted = cursor.rowcount
    cursor.execute(f"DROP TABLE {stage}")
    return inserted


def planner_stats_refresh(*models: type[Model]) -> list[str]:
    """ANALYZE those of ``models``' tables that have more than doubled since PostgreSQL last
    analyzed them; returns their names.  A bulk load (a first follower sync) grows tables
    far faster than autovacuum re-analyzes them, and on stale statistics the planner
    misjudges the per-row lookups: with a follower table it believes empty it probes
    ``(tenant, app, is_subscribed)`` and filters every follower of the app, instead of the
    unique ``(tenant, app, openid)`` index (measured: 36 ms instead of 0.02 ms a row at
    100k followers).  Cheap to call before every page: one catalog query."""
    if connection.vendor != "postgresql":
        return []
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND "
            "pg_relation_size(oid) > 2 * greatest(relpages, 64)::bigint * "
            "current_setting('block_size')::bigint", [tables])
        stale = [row[0] for row in cursor.fetchall()]
        for table in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return stale


def rows_insert(*, model: type[Model], columns: Sequence[str], rows: list[Sequence[Any]],
                ignore_conflicts: bool = False) -> None:
    """Insert ``rows`` (Python values, in ``columns`` order) in one go."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_insert(cursor, model=model, columns=columns, payload=copy_payload(rows),
                        on_conflict="ON CONFLICT DO NOTHING" if ignore_conflicts else "",
                        csv_format=True)
            return
        fields = {field.column: field for field in model._meta.concrete_fields}
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(column) for column in columns)
        verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
        cursor.executemany(
            f"{verb} INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608
            [[fields[column].get_db_prep_value(value, connection)
              for column, value in zip(columns, row, strict=True)] for row in rows])


def rows_upsert(*, model: type[Model], columns: Sequence[str], rows: list[Sequence[Any]],
                conflict: Sequence[str], update: Sequence[str],
                touch: Sequence[str] = ()) -> None:
    """Insert ``rows``; where one exists (by the ``conflict`` columns), update its ``update``
    columns, and its ``touch`` columns (a "synced at"), but only when one of the ``update``
    columns differs: an unchanged row is not rewritten.  Rows must not repeat a key."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    assignments = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (*update, *touch))
    changed = " OR ".join(f"{table}.{quote(c)} IS DISTINCT FROM EXCLUDED.{quote(c)}"
                          for c in update)
    clause = (f"ON CONFLICT ({', '.join(map(quote, conflict))}) "
              f"DO UPDATE SET {assignments} WHERE {changed}")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_insert(cursor, model=model, columns=columns, payload=copy_payload(rows),
                        on_conflict=clause, csv_format=True)
            return
        fields = {field.column: field for field in model._meta.concrete_fields}
        names = ", ".join(quote(column) for column in columns)
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
            f"{clause.replace('EXCLUDED.', 'excluded.')}",
            [[fields[column].get_db_prep_value(value, connection)
              for column, value in zip(columns, row, strict=True)] for row in rows])
