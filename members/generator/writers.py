"""Getting generated rows into the database: ``scrm.db.copy.copy_insert`` on PostgreSQL;
other databases (the SQLite quick start) get a plain ``executemany`` here, since bulk_create
would overwrite the generated ``created_at`` values with "now".
"""

import json
from collections.abc import Sequence

from django.db import connection
from django.db.models import Max, Model


def portable_insert(cursor, *, model: type[Model], columns: Sequence[str],
                    rows: list[tuple]) -> None:
    if not rows:
        return
    fields = {field.column: field for field in model._meta.concrete_fields}
    converters = [_converter(fields[column]) for column in columns]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    cursor.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({placeholders})",  # noqa: S608
        [[convert(value) for convert, value in zip(converters, row, strict=True)]
         for row in rows],
    )


def _converter(field):
    from members.generator.rows import NULL

    is_json = field.get_internal_type() == "JSONField"

    def convert(value):
        if value == NULL:
            return None
        python = json.loads(value) if is_json else field.to_python(value)
        return field.get_db_prep_value(python, connection)

    return convert


class IdReserver:
    """Primary keys handed out before the rows exist, so a chunk's rows can point at each
    other.  PostgreSQL: from the table's own sequence (gaps are harmless).  Elsewhere: after
    the highest id, which is safe because the quick start's SQLite writes one at a time."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.next_id: int | None = None

    def reserve(self, count: int) -> range | list[int]:
        if count <= 0:
            return range(0)
        if connection.vendor == "postgresql":
            return self._from_sequence(count)
        if self.next_id is None:
            highest = self.model.objects.unscoped().aggregate(highest=Max("id"))["highest"]
            self.next_id = (highest or 0) + 1
        ids = range(self.next_id, self.next_id + count)
        self.next_id += count
        return ids

    def _from_sequence(self, count: int) -> range | list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH reserved AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id "
                "FROM generate_series(1, %s)) "
                "SELECT min(id), max(id), CASE WHEN max(id) - min(id) + 1 = count(*) "
                "THEN NULL ELSE array_agg(id ORDER BY id) END FROM reserved",
                [self.model._meta.db_table, count],
            )
            low, high, scattered = cursor.fetchone()
        return range(low, high + 1) if scattered is None else scattered
