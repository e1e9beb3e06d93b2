"""The audit log: who did or saw what, append-only.

Services call ``audit_record`` in the transaction of the change they audit, so an entry
exists exactly when the change does.  PostgreSQL refuses UPDATE and DELETE on the table (a
trigger, migration scrm 0002); the only way round it is ``audit_purge_allow``, which the
deletion of a whole tenant uses."""

from datetime import datetime

from django.db import connection, models

from scrm.access import Actor
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope


def audit_record(*, actor: Actor, action: str, target: models.Model | None = None,
                 data: dict | None = None, ip: str | None = None) -> AuditEntry:
    return audit_write(
        tenant_id=actor.tenant.pk, actor_label=actor.label, action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=target.pk if target is not None else None, data=data, ip=ip,
    )


def audit_write(*, tenant_id: int, actor_label: str, action: str, target_type: str = "",
                target_id: int | None = None, data: dict | None = None,
                ip: str | None = None) -> AuditEntry:
    """An entry for events without an ``Actor`` (sign-ins, a failed sign-in's target).
    Written inside ``tenant_id``'s scope, so row-level security lets it in from anywhere."""
    with tenant_scope(tenant_id):
        return AuditEntry.objects.create(
            tenant_id=tenant_id, actor=actor_label[:64], action=action,
            target_type=target_type, target_id=target_id, data=data or {}, ip=ip,
        )


def audit_purge_allow() -> None:
    """Let this transaction delete audit entries: only for deleting whole tenants."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('scrm.audit_purge', 'on', true)")


def audit_list(*, filters: dict | None = None) -> models.QuerySet[AuditEntry]:
    """The current tenant's entries, newest first (ids grow with time), narrowed by
    ``filters``: action (exact, or a prefix ending in "."), actor, target_type, target_id,
    since, until."""
    filters = filters or {}
    queryset = AuditEntry.objects.all()
    action = filters.get("action")
    if action:
        queryset = (queryset.filter(action__startswith=action) if action.endswith(".")
                    else queryset.filter(action=action))
    for name in ("actor", "target_type", "target_id"):
        if filters.get(name) not in (None, ""):
            queryset = queryset.filter(**{name: filters[name]})
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("-id")
