from members.services.bulk import order_ingest_bulk
from members.services.members import member_update, member_upsert, timeline_add
from members.services.merge import member_merge
from members.services.orders import order_ingest, refund_create
from members.services.stats import member_stats_refresh

__all__ = [
    "member_merge",
    "member_stats_refresh",
    "member_update",
    "member_upsert",
    "order_ingest",
    "order_ingest_bulk",
    "refund_create",
    "timeline_add",
]
