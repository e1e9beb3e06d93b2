"""Migration operations that make a table tenant-isolated in PostgreSQL.

``TenantIsolation("member")``:
- adds ``UNIQUE (tenant_id, id)`` so other tables can reference ``(tenant_id, id)``;
- turns every ``ForeignKey(..., db_constraint=False)`` to a tenant-owned model into a
  composite ``FOREIGN KEY (tenant_id, x_id) REFERENCES target (tenant_id, id)``, so a row can
  never point at another tenant's row;
- references the tenant itself only where no NOT NULL composite reference implies it;
- leaves out the references named in ``unchecked``;
- with ``rls=True``, enables and forces row-level security with a policy that PostgreSQL
  evaluates once per query (the settings sit in scalar subqueries, i.e. InitPlans).
On other databases (the SQLite quick start) it does nothing.
"""

import hashlib
from typing import Any

from django.db import migrations

POLICY = (
    "tenant_id = (SELECT NULLIF(current_setting('scrm.tenant_id', true), '')::bigint) "
    "OR (SELECT current_setting('scrm.rls_bypass', true)) = 'on'"
)


def constraint_name(table: str, suffix: str) -> str:
    digest = hashlib.sha1(f"{table}:{suffix}".encode()).hexdigest()[:8]  # noqa: S324
    return f"{table[:40]}_{suffix[:10]}_{digest}"


def isolation_sql(model: Any, *, rls: bool, unchecked: tuple[str, ...] = ()) -> list[str]:
    table = model._meta.db_table
    statements = [
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint_name(table, "tenant_uq")}" '
        f"UNIQUE (tenant_id, id)"
    ]
    implied = False  # a NOT NULL composite reference already proves the tenant exists
    for field in model._meta.local_fields:
        target = getattr(field, "related_model", None)
        if not field.many_to_one or field.db_constraint or target is None:
            continue
        if field.name == "tenant" or field.name in unchecked:
            continue
        if not any(f.name == "tenant" for f in target._meta.local_fields):
            continue
        implied = implied or not field.null
        statements.append(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint_name(table, field.column)}" '
            f'FOREIGN KEY (tenant_id, "{field.column}") '
            f'REFERENCES "{target._meta.db_table}" (tenant_id, id) DEFERRABLE INITIALLY DEFERRED'
        )
    if not implied and "tenant" not in unchecked and any(
            f.name == "tenant" and not f.db_constraint for f in model._meta.local_fields):
        statements.append(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint_name(table, "tenant_fk")}" '
            f"FOREIGN KEY (tenant_id) REFERENCES scrm_tenant (id) DEFERRABLE INITIALLY DEFERRED"
        )
    if rls:
        statements += [
            f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
            f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
            f'CREATE POLICY tenant_isolation ON "{table}" USING ({POLICY}) WITH CHECK ({POLICY})',
        ]
    return statements


class TenantIsolation(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, rls: bool = True, unchecked: tuple[str, ...] = ()) -> None:
        self.model_name = model_name
        self.rls = rls
        # References left without a database constraint on purpose: high-volume append tables
        # written only by set-based statements that join the tenant's own rows (each check
        # costs ~20 µs a row; see the closing notes of the tags issue).
        self.unchecked = tuple(unchecked)

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        for statement in isolation_sql(model, rls=self.rls, unchecked=self.unchecked):
            schema_editor.execute(statement)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        if self.rls:
            schema_editor.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
            schema_editor.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
            schema_editor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
        for statement in reversed(isolation_sql(model, rls=False, unchecked=self.unchecked)):
            name = statement.split('CONSTRAINT "')[1].split('"')[0]
            schema_editor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{name}"')

    def describe(self) -> str:
        return f"Tenant isolation for {self.model_name}"
