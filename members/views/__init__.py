"""HTML views of members: the member 360 page, phone reveal, notes, and the guide's phone
view (H5)."""
