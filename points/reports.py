"""The loyalty panel's whole-tenant reports, registered with the dashboard's report cache
(``scrm.reports``): members per level, and the points liability."""

from points import selectors
from points.models import TierLevel
from scrm.access import Actor
from scrm.reports import report_register


def tiers_report(*, actor: Actor | None = None) -> list[dict]:
    """Members per level of each active programme, from the levels' system tags (kept up to
    date with every move), so no table of a million standings is counted."""
    levels = TierLevel.objects.filter(program__is_active=True).select_related(
        "program", "tag").order_by("program_id", "rank")
    return [{"program": level.program.name, "code": level.code, "name": level.name,
             "threshold": level.threshold, "members": level.tag.member_count if level.tag else 0}
            for level in levels]


def liability_report(*, actor: Actor) -> dict:
    return selectors.points_liability()


def register() -> None:
    report_register(name="tiers", compute=tiers_report)
    report_register(name="liability", compute=liability_report)
