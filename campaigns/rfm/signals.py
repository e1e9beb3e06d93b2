"""Domain events of RFM and lifecycle, sent after the change committed.  Higher apps
(automation, integrations) connect to them."""

from django.dispatch import Signal

# A run changed members' segments: one send per run.  ``member_ids`` is computed only when
# someone listens; the run's bitmaps (selectors.run_bitmaps) say who is where.
rfm_changed = Signal()  # tenant_id, run_id, member_ids: list[int]

# Members moved between lifecycle stages: one send per evaluation (a scheduled pass or the
# members of some orders); the first pass of a tenant, which only sets everyone's stage,
# sends nothing.
lifecycle_changed = Signal()  # tenant_id, changes: list[(member_id, from_stage, to_stage)]
