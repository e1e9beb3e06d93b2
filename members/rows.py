"""Rows in and out of a table without building querysets: for hot paths and batches, where
compiling a query and the model machinery around it cost more than the database does.

Values travel as parameters; names and types come from the models.  Row-level security
applies as to any statement."""

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import JSONField, Model

FEW_ROWS = 20


def rows_insert(
    model: type[Model], rows: list[dict[str, Any]], *, now: datetime, returning: bool = True
) -> list[int]:
    """Insert ``rows`` (field attname -> value) and return their ids, in order.

    Fields a row leaves out take their default (``now`` for auto_now fields), the primary
    key included.  On PostgreSQL this is one ``INSERT``: ``VALUES`` for a few rows, and for
    more ``SELECT FROM unnest(<an array per column>)``: at a thousand rows, building a model
    instance per row is most of what ``bulk_create`` costs.  Row-level security applies as
    to any insert (COPY FROM would not be allowed)."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        created = model.objects.bulk_create([model(**_defaults(model, rows, now), **row)
                                             for row in rows])
        return [obj.pk for obj in created]
    statement, params = _insert(model, rows, now=now, returning=returning)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [row[0] for row in cursor.fetchall()] if returning else []


def rows_insert_together(inserts: list[tuple[type[Model], list[dict[str, Any]]]], *,
                         now: datetime) -> None:
    """``rows_insert`` for several tables in one round trip (rows that point at each other
    carry their keys already, e.g. a new member's id from ``member_keys_allocate``)."""
    inserts = [(model, rows) for model, rows in inserts if rows]
    if connection.vendor != "postgresql":
        for model, rows in inserts:
            rows_insert(model, rows, now=now, returning=False)
        return
    statements, params = [], []
    for model, rows in inserts:
        statement, values = _insert(model, rows, now=now, returning=False)
        statements.append(statement)
        params += values
    with connection.cursor() as cursor:
        cursor.execute("; ".join(statements), params)


def _defaults(model: type[Model], rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    given = rows[0].keys()
    return {
        f.attname: now
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        else f.get_default()
        for f in model._meta.concrete_fields
        if f.attname not in given and not f.primary_key
    }


def _insert(model: type[Model], rows: list[dict[str, Any]], *, now: datetime,
            returning: bool) -> tuple[str, list[Any]]:
    with_pk = model._meta.pk.attname in rows[0]
    defaults = _defaults(model, rows, now)
    arrays = []
    for f in _insert_fields(model, with_pk=with_pk):
        if f.attname in defaults:
            values = [defaults[f.attname]] * len(rows)
        else:
            values = [row[f.attname] for row in rows]
        if isinstance(f, JSONField):
            values = [json.dumps(value, cls=f.encoder) for value in values]
        arrays.append(values)
    if len(rows) > FEW_ROWS:
        return _insert_statement(model, rows=0, with_pk=with_pk, returning=returning), arrays
    statement = _insert_statement(model, rows=len(rows), with_pk=with_pk, returning=returning)
    return statement, [array[position] for position in range(len(rows)) for array in arrays]


def _insert_fields(model: type[Model], *, with_pk: bool) -> list[Any]:
    return [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]


@cache
def _insert_statement(model: type[Model], *, rows: int, with_pk: bool, returning: bool) -> str:
    """``VALUES`` for ``rows`` rows, or with ``rows=0`` a list per column to ``unnest``: as
    values, a few rows cost half as much to parse and plan; many travel better as arrays."""
    fields = _insert_fields(model, with_pk=with_pk)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    if rows:
        row = f"({', '.join(['%s'] * len(fields))})"
        source = f"VALUES {', '.join([row] * rows)}"
    else:
        casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        source = f"SELECT * FROM unnest({casts})"  # noqa: S608
    # Names and types come from the model, values travel as parameters.
    statement = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {source}"  # noqa: S608
    if returning:
        statement += f" RETURNING {quote(model._meta.pk.column)}"
    return statement


def rows_update(model: type[Model], objs: list[Model], fields: Iterable[str]) -> None:
    """Write ``fields`` of ``objs`` back, like ``bulk_update``: on PostgreSQL as one
    ``UPDATE ... FROM unnest(...)`` instead of a CASE expression per object."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, list(fields))
        return
    pk = model._meta.pk
    columns = [pk, *(model._meta.get_field(name) for name in fields)]
    arrays = [[getattr(obj, f.attname) for obj in objs] for f in columns]
    for position, f in enumerate(columns):
        if isinstance(f, JSONField):
            arrays[position] = [json.dumps(value, cls=f.encoder) for value in arrays[position]]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in columns)
    casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in columns)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns[1:])
    table, key = quote(model._meta.db_table), quote(pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({casts}) AS v({names}) "  # noqa: S608
            f"WHERE {table}.{key} = v.{key}",
            arrays,
        )


@cache
def _loader(model: type[Model]) -> tuple[list[str], list[str], list[tuple[int, Any, list]]]:
    """The columns, attribute names and database converters of ``model``, as the queryset
    compiler would apply them (JSON, for instance, arrives as text)."""
    fields = model._meta.concrete_fields
    table = model._meta.db_table
    converters = []
    for position, f in enumerate(fields):
        column = f.get_col(table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    columns = [connection.ops.quote_name(f.column) for f in fields]
    return columns, [f.attname for f in fields], converters


def columns_of(model: type[Model], alias: str) -> str:
    """``alias.column, ...`` for every concrete field of ``model``, in ``instance_from`` order."""
    return ", ".join(f"{alias}.{column}" for column in _loader(model)[0])


def width_of(model: type[Model]) -> int:
    return len(_loader(model)[0])


def instance_from(model: type[Model], row: Iterable[Any]) -> Model:
    """The instance a queryset would build from ``row`` (its ``columns_of`` values)."""
    _columns, names, converters = _loader(model)
    values = list(row)
    for position, column, found in converters:
        for converter in found:
            values[position] = converter(values[position], column, connection)
    return model.from_db(connection.alias, names, values)


def rows_select(model: type[Model], *, where: str, params: list[Any],
                order_by: str = "") -> list[Model]:
    """Instances of ``model`` whose rows match ``where`` (SQL with %s placeholders; it must
    name the tenant).  ``QuerySet.filter`` gives the same, at several times the cost."""
    table = connection.ops.quote_name(model._meta.db_table)
    order = f" ORDER BY {order_by}" if order_by else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns_of(model, table)} FROM {table} WHERE {where}{order}",  # noqa: S608
            params,
        )
        return [instance_from(model, row) for row in cursor.fetchall()]
