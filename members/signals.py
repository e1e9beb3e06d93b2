"""Domain events of the members app.  Higher apps (tags, points, campaigns, integrations)
connect to them; they are sent after the transaction commits."""

from django.dispatch import Signal

member_created = Signal()  # tenant_id, member_id
member_updated = Signal()  # tenant_id, member_id, changed: list[str]
member_merged = Signal()  # tenant_id, survivor_id, merged_id
order_paid = Signal()  # tenant_id, order_ids: list[int]
order_refunded = Signal()  # tenant_id, order_id, refund_id
# Sent inside the merge's transaction: receivers move their own rows (tags, points, coupons)
# from ``merged`` to ``survivor`` so the merge is all-or-nothing.
member_merging = Signal()  # tenant_id, survivor_id, merged_id
# Sent inside the transaction whenever members' profile or stats change (create, update,
# order, refund, merge): the audience index marks them dirty in the same transaction.
members_changed = Signal()  # tenant_id, member_ids: list[int], optional member_nos: list[int]
# Sent inside an erasure's transaction (PIPL): receivers delete or blank the personal data
# they hold about these members (tags, followers...) and add counts to ``removed``.
member_erasing = Signal()  # tenant_id, member_ids: list[int], removed: dict
# Sent inside the transaction when a member's consent for a purpose changes: receivers drop
# what the member no longer allows (profiling: rule tags, RFM and lifecycle rows).
consent_changed = Signal()  # tenant_id, member_id, purpose, granted
# Sent after a bulk load that bypassed the per-member events (generated tenants, imports):
# higher apps rebuild what they derive from members, e.g. the audience index.
members_loaded = Signal()  # tenant_id
