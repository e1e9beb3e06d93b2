"""The members panel's report, registered with the dashboard's report cache
(``scrm.reports``): members per source channel and new members per day over a period.  It
follows what the actor may see (a guide's customers, a store's members); the warmer fills
the whole tenant's."""

import datetime as dt

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from members.models import Member, SourceChannel
from members.selectors import member_visible
from scrm.access import Actor
from scrm.reports import report_register
from scrm.web import PERIODS
from tags.services.segments import expression_members, visible_members


def period_start(days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Local midnight ``days - 1`` days ago: the period includes today."""
    today = timezone.localdate(now or timezone.now())
    start = today - dt.timedelta(days=days - 1)
    return dt.datetime.combine(start, dt.time.min, tzinfo=timezone.get_current_timezone())


def members_report(*, actor: Actor, days: int) -> dict:
    """Members per source channel (all, and new in the period) from the audience index, and
    new members per day and channel over the period from the members table."""
    since = period_start(days)
    recent = visible_members(actor=actor, member_nos=expression_members(
        {"field": "created_at", "op": "gte", "value": since.isoformat()}))
    channels = []
    for code, label in SourceChannel.choices:
        members = visible_members(actor=actor, member_nos=expression_members(
            {"field": "source_channel", "op": "eq", "value": code}))
        if members:
            channels.append({"code": code, "name": str(label), "members": len(members),
                             "new": members.intersection_cardinality(recent)})
    channels.sort(key=lambda row: -row["members"])
    rows = (member_visible(actor=actor).filter(status=Member.Status.ACTIVE, created_at__gte=since)
            .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
            .values_list("day", "source_channel").annotate(n=Count("id")).order_by())
    daily: dict[tuple, int] = {(day, channel): n for day, channel, n in rows}
    days_list = [(since + dt.timedelta(days=i)).date() for i in range(days)]
    return {"total": sum(row["members"] for row in channels), "new": len(recent),
            "channels": channels, "days": [day.isoformat() for day in days_list],
            "daily": {row["name"]: [daily.get((day, row["code"]), 0) for day in days_list]
                      for row in channels}}


def register() -> None:
    report_register(name="members", compute=members_report, periods=PERIODS)
