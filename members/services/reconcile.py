from members.models import Member, MemberStats
from members.services.stats import member_stats_refresh

CHUNK = 5000
FIELDS = ("order_count", "total_spent_fen", "refunded_fen", "first_order_at", "last_order_at")


def _snapshot(member_ids: list[int]) -> dict[int, tuple]:
    return {row[0]: row[1:] for row in MemberStats.objects.filter(
        member_id__in=member_ids).values_list("member_id", *FIELDS)}


def member_stats_reconcile(*, after_id: int = 0, on_chunk=None) -> int:
    """Recompute every member's stats of the tenant in context from the orders, in chunks of
    members, and return how many were out of step (the drift a healthy system keeps at 0)."""
    drift = 0
    while True:
        ids = list(Member.objects.filter(pk__gt=after_id).order_by("pk")
                   .values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return drift
        before = _snapshot(ids)
        member_stats_refresh(member_ids=ids)
        after = _snapshot(ids)
        drift += sum(1 for member_id in ids if before.get(member_id) != after[member_id])
        after_id = ids[-1]
        if on_chunk is not None:
            on_chunk(len(ids))
