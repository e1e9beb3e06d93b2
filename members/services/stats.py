from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum

from members import signals
from members.models import Member, MemberStats, Order

COUNTED = Q(status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED])


def member_stats_initial(*, member: Member, now: datetime) -> MemberStats:
    """The stats row of a member created in this transaction, unsaved: with no orders yet,
    it is what ``member_stats_refresh`` would write."""
    return MemberStats(tenant_id=member.tenant_id, member=member, updated_at=now)


@transaction.atomic(savepoint=False)  # the locks below need a transaction, not a savepoint
def member_stats_refresh(*, member_ids: Iterable[int]) -> int:
    """Recompute the stats of ``member_ids`` from their orders, in one upsert.

    Used by order ingest, refunds and merges alike, so every path agrees; fully refunded
    orders do not count as orders, and refunds reduce the amount spent."""
    ids = sorted(set(member_ids))
    if not ids:
        return 0
    # Lock the members (in pk order, as merges do) before reading their orders: a concurrent
    # order of the same member then waits for this transaction to commit and counts its
    # order too, instead of summing without it and overwriting these totals.
    tenants = dict(
        Member.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", "tenant_id")
    )
    totals = {
        row["member_id"]: row
        for row in Order.objects.filter(member_id__in=ids)
        .values("member_id")
        .annotate(
            order_count=Count("id", filter=COUNTED),
            gross=Sum("amount_fen"),
            refunded=Sum("refunded_fen"),
            first=Min("paid_at", filter=COUNTED),
            last=Max("paid_at", filter=COUNTED),
        )
    }
    rows = []
    for member_id in ids:
        total = totals.get(member_id, {})
        rows.append(
            MemberStats(
                tenant_id=tenants[member_id],
                member_id=member_id,
                order_count=total.get("order_count", 0),
                total_spent_fen=(total.get("gross") or 0) - (total.get("refunded") or 0),
                refunded_fen=total.get("refunded") or 0,
                first_order_at=total.get("first"),
                last_order_at=total.get("last"),
            )
        )
    MemberStats.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "member"],
        update_fields=[
            "order_count",
            "total_spent_fen",
            "refunded_fen",
            "first_order_at",
            "last_order_at",
            "updated_at",
        ],
    )
    signals.members_changed.send(sender=MemberStats, tenant_id=rows[0].tenant_id,
                                 member_ids=ids)
    return len(rows)
