"""The audit log is append-only in PostgreSQL: a trigger refuses UPDATE and DELETE, except a
DELETE in a transaction that set ``scrm.audit_purge`` (deleting a whole tenant,
``scrm.audit.audit_purge_allow``).  The SQLite quick start goes without."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION scrm_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('scrm.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'scrm_auditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER scrm_auditentry_append_only
    BEFORE UPDATE OR DELETE ON scrm_auditentry
    FOR EACH ROW EXECUTE FUNCTION scrm_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS scrm_auditentry_append_only ON scrm_auditentry;
DROP FUNCTION IF EXISTS scrm_audit_append_only();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # the SQL has a literal %

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("scrm", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD), elidable=False),
    ]
