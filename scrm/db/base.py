"""PostgreSQL backend that keeps row-level security in step with the tenant context.

Before a cursor runs, the connection's ``scrm.tenant_id`` / ``scrm.rls_bypass`` settings are
made to match ``scrm.tenancy``.  Inside a transaction they are set transaction-locally
(``set_config(..., true)``) so a pooled connection never carries a tenant over; every commit,
rollback and savepoint rollback forgets what was set, so the next query sets it again.
"""

from typing import Any

from django.db.backends.postgresql import base

from scrm import tenancy


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rls_applied: tuple[str, str] | None = None

    def init_connection_state(self) -> None:
        super().init_connection_state()
        self._rls_applied = None

    def create_cursor(self, name: str | None = None) -> Any:
        wanted = tenancy.rls_settings()
        if wanted != self._rls_applied:
            is_local = not self.get_autocommit()
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('scrm.tenant_id', %s, %s), "
                    "set_config('scrm.rls_bypass', %s, %s)",
                    [wanted[0], is_local, wanted[1], is_local],
                )
            self._rls_applied = wanted
        return super().create_cursor(name)

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
