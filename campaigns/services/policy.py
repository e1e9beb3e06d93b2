"""The tenant's contact policy: frequency cap and quiet hours (Asia/Shanghai)."""

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import ContactPolicy, Delivery
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.tenancy import require_tenant_id

POLICY_FIELDS = ("max_touches", "period_days", "quiet_start", "quiet_end")


def policy_get() -> ContactPolicy:
    policy = ContactPolicy.objects.first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return ContactPolicy.objects.create(tenant_id=require_tenant_id())
    except IntegrityError:
        return ContactPolicy.objects.get()


@transaction.atomic
def policy_update(*, actor: Actor, changes: dict[str, Any]) -> ContactPolicy:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ApplicationError(_("未知字段：%(names)s") % {"names": ", ".join(sorted(unknown))},
                               code="validation_error")
    policy = policy_get()
    for name, value in changes.items():
        setattr(policy, name, value)
    if (policy.quiet_start is None) != (policy.quiet_end is None):
        raise ApplicationError(_("免打扰开始和结束时间需同时设置。"), code="invalid_quiet_hours",
                               fields={"quiet_end": [_("必填")]})
    policy.save()
    audit_record(actor=actor, action="campaigns.policy_update", target=policy,
                 data={k: str(v) for k, v in changes.items()})
    return policy


def quiet_until(policy: ContactPolicy, now: datetime | None = None) -> datetime | None:
    """When the quiet hours around ``now`` end, or None outside them.  A window may cross
    midnight (22:00–08:00)."""
    if policy.quiet_start is None or policy.quiet_end is None:
        return None
    local = timezone.localtime(now or timezone.now())
    start, end, clock = policy.quiet_start, policy.quiet_end, local.time()
    crosses = start > end
    inside = (clock >= start or clock < end) if crosses else start <= clock < end
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if crosses and clock >= start else local.date()
    return timezone.make_aware(datetime.combine(end_day, end), timezone.get_current_timezone())


def capped_members(policy: ContactPolicy, member_ids: list[int],
                   now: datetime | None = None) -> set[int]:
    """Members already reached ``max_touches`` times in the policy's period."""
    if not policy.max_touches or not member_ids:
        return set()
    since = (now or timezone.now()) - timedelta(days=policy.period_days)
    if connection.vendor == "postgresql":
        return _capped_postgres(policy, member_ids, since)
    rows = (Delivery.objects.filter(member_id__in=member_ids, status=Delivery.Status.SENT,
                                    created_at__gte=since)
            .values("member_id").annotate(n=Count("pk")).filter(n__gte=policy.max_touches))
    return {row["member_id"] for row in rows}


# Driven by the chunk's ids, one index lookup (tenant, member, created_at) per member: with
# ``member_id IN (...)`` the planner, misled by a deliveries table a running campaign is
# filling faster than it is analysed, scanned every delivery in the period for each chunk
# (3 s a chunk of 5,000 at 100,000 deliveries, growing with the run).
CAPPED_SQL = """
SELECT wanted.id FROM unnest(%(ids)s::bigint[]) AS wanted(id)
WHERE (SELECT count(*) FROM {delivery} d
       WHERE d.tenant_id = %(tenant)s AND d.member_id = wanted.id AND d.status = 'sent'
         AND d.created_at >= %(since)s) >= %(limit)s
"""


def _capped_postgres(policy: ContactPolicy, member_ids: list[int], since: datetime) -> set[int]:
    query = CAPPED_SQL.format(delivery=connection.ops.quote_name(Delivery._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(query, {"ids": list(member_ids), "tenant": policy.tenant_id,
                               "since": since, "limit": policy.max_touches})
        return {row[0] for row in cursor.fetchall()}
