"""What the coupon services share: errors, the system actor, and id lists in SQL."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Model, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _
from rest_framework import status

from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id

TIMELINE_ISSUED = "coupon.issued"
TIMELINE_REDEEMED = "coupon.redeemed"


def invalid(fields: dict[str, list[str]], code: str = "validation_error") -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(_("请求数据有误：%(detail)s") % {"detail": first}, code=code,
                            fields=fields)


def refuse_unknown(changes: dict[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise invalid({name: [_("未知字段。")] for name in unknown})


def conflict(code: str, message: str) -> Conflict:
    return Conflict(message, code=code)


def not_found() -> ApplicationError:
    return ApplicationError(_("未找到。"), code="not_found",
                            status_code=status.HTTP_404_NOT_FOUND)


def key_reused() -> ApplicationError:
    return ApplicationError(_("该幂等键已用于另一张券。"), code="idempotency_key_reused",
                            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY)


def unique(queryset: QuerySet) -> Any:
    """The row a lookup by a unique key finds, or None.  Not ``first()``: its ORDER BY id
    LIMIT 1 lets the planner walk the primary key looking for the row instead of using the
    key's index."""
    return next(iter(queryset[:1]), None)


def system_actor() -> Actor:
    return Actor(tenant=Tenant.objects.get(pk=require_tenant_id()))


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON for the audit log."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items()}


def pk_in(model: type[Model], ids: Sequence[int]) -> RawSQL | Q:
    """``model``'s rows with these ids, for ``filter()``: one array parameter on PostgreSQL
    (an index scan, whatever the table's statistics say; an IN list of 50,000 placeholders
    costs more to build than the query takes to run), JSON on SQLite."""
    if connection.vendor == "postgresql":
        column = f"{connection.ops.quote_name(model._meta.db_table)}.{model._meta.pk.column}"
        return RawSQL(f"{column} = ANY(%s::bigint[])", [list(ids)],  # noqa: S611
                      output_field=BooleanField())
    return Q(pk__in=RawSQL("SELECT value FROM json_each(%s)", [json.dumps(list(ids))]))
