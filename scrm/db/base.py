"""PostgreSQL backend that keeps row-level security in step with the tenant context.

Before a cursor runs, the connection's ``scrm.tenant_id`` / ``scrm.rls_bypass`` settings are
made to match ``scrm.tenancy``.  Inside a transaction they are set transaction-locally
(``set_config(..., true)``) so a pooled connection never carries a tenant over; every commit,
rollback and savepoint rollback forgets what was set, so the next query sets it again.

The ``set_config`` travels in the same round trip as the cursor's first statement (one query
string, two statements), so keeping the settings current costs no extra round trip.
"""

from typing import Any

import psycopg2
from django.conf import settings
from django.db.backends.postgresql import base

from scrm import tenancy

RLS_STATEMENT = (
    "SELECT set_config('scrm.tenant_id', %s, %s), set_config('scrm.rls_bypass', %s, %s)"
)


# Outside a transaction, two statements in one query string run as one implicit transaction,
# which CREATE DATABASE, VACUUM and the like refuse: there only these go together.
DATA_STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class _PendingSettings:
    """The settings a cursor still has to apply, and where to record that it did."""

    def __init__(self, owner: "DatabaseWrapper", wanted: tuple[str, str], statement: bytes,
                 *, is_local: bool) -> None:
        self.owner = owner
        self.wanted = wanted
        self.statement = statement
        self.is_local = is_local

    def joins(self, query: Any) -> bool:
        if not isinstance(query, str | bytes):  # e.g. psycopg2.sql.Composed
            return False
        head = query[:64].decode(errors="replace") if isinstance(query, bytes) else query[:64]
        return self.is_local or head.lstrip()[:6].upper().startswith(DATA_STATEMENTS)

    def prefix(self, query: str | bytes) -> str | bytes:
        if isinstance(query, bytes):
            return self.statement + b"; " + query
        return f"{self.statement.decode()}; {query}"

    def applied(self) -> None:
        self.owner._rls_applied = self.wanted

    def lost(self) -> None:
        # A failing statement takes the set_config of its query string down with it: the
        # implicit transaction outside a transaction block, the aborted one inside.
        self.owner._rls_applied = None


class RlsCursor(psycopg2.extensions.cursor):
    pending: _PendingSettings | None = None

    def execute(self, query: Any, vars: Any = None) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return super().execute(query, vars)
        if not pending.joins(query):
            self._apply(pending)
            return super().execute(query, vars)
        # The statement is fully literal (no % placeholders), so it joins a query with or
        # without parameters alike.
        try:
            super().execute(pending.prefix(query), vars)
        except BaseException:
            pending.lost()
            raise
        pending.applied()
        return None

    def _apply(self, pending: _PendingSettings) -> None:
        try:
            super().execute(pending.statement)
        except BaseException:
            pending.lost()
            raise
        pending.applied()

    def _flush(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            self._apply(pending)

    def executemany(self, query: Any, vars_list: Any) -> None:
        self._flush()
        return super().executemany(query, vars_list)

    def callproc(self, *args: Any, **kwargs: Any) -> Any:
        self._flush()
        return super().callproc(*args, **kwargs)

    def copy_expert(self, *args: Any, **kwargs: Any) -> None:
        self._flush()
        return super().copy_expert(*args, **kwargs)

    def copy_from(self, *args: Any, **kwargs: Any) -> None:
        self._flush()
        return super().copy_from(*args, **kwargs)

    def copy_to(self, *args: Any, **kwargs: Any) -> None:
        self._flush()
        return super().copy_to(*args, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rls_applied: tuple[str, str] | None = None

    def init_connection_state(self) -> None:
        super().init_connection_state()
        self._rls_applied = None

    def create_cursor(self, name: str | None = None) -> Any:
        wanted = tenancy.rls_settings()
        if wanted == self._rls_applied:
            return super().create_cursor(name)
        is_local = not self.get_autocommit()
        params = [wanted[0], is_local, wanted[1], is_local]
        if name:  # a server-side cursor wraps its query in DECLARE: set the settings first
            with self.connection.cursor() as cursor:
                cursor.execute(RLS_STATEMENT, params)
            self._rls_applied = wanted
            return super().create_cursor(name)
        cursor = self.connection.cursor(cursor_factory=RlsCursor)
        cursor.tzinfo_factory = self.tzinfo_factory if settings.USE_TZ else None
        statement = cursor.mogrify(RLS_STATEMENT, params)
        cursor.pending = _PendingSettings(self, wanted, statement, is_local=is_local)
        return cursor

    def _commit(self) -> None:
        self._rls_applied = None
        super()._commit()

    def _rollback(self) -> None:
        self._rls_applied = None
        super()._rollback()

    def _savepoint_rollback(self, sid: str) -> None:
        # Roll back first: the transaction may be in an aborted state until then.
        super()._savepoint_rollback(sid)
        self._rls_applied = None

    def _set_autocommit(self, autocommit: bool) -> None:
        self._rls_applied = None
        super()._set_autocommit(autocommit)
