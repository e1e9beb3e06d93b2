from django.db import models

from scrm.access import Actor
from scrm.models import AuditEntry


def audit_record(*, actor: Actor, action: str, target: models.Model | None = None,
                 data: dict | None = None, ip: str | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        tenant_id=actor.tenant.pk, actor=actor.label, action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=target.pk if target is not None else None, data=data or {}, ip=ip,
    )
