"""HTML views of loyalty: the dashboard's tiers and points liability, a member's points and
tier, the tier programme and earn rules, the points mall and its flash sales."""
