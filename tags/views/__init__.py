"""HTML views of tags and audiences: the members panel of the dashboard (counts from the
audience index), the member list with its filters, the segment builder with its live
count, saved segments and their CSV export, member tags, the tag taxonomy and rule tags."""
