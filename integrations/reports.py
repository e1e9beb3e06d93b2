"""The channels panel's whole-tenant report, registered with the dashboard's report cache
(``scrm.reports``): followers, WeCom customers and groups, and channel attribution."""

import datetime as dt

from django.db.models import Count, Q
from django.utils import timezone

from integrations.models import ChannelEvent, Follower
from integrations.models.wecom import ContactRelation, GroupChat, GroupMember, WeComUser
from scrm.access import Actor
from scrm.reports import report_register
from scrm.web import PERIODS

ATTRIBUTION_SHOWN = 10


def channels_report(*, actor: Actor, days: int) -> dict:
    """Followers per account, WeCom customers and groups, and scans and new members by
    channel code, store and guide over the last ``days`` days."""
    since = timezone.now() - dt.timedelta(days=days)
    follows = dict(Follower.objects.filter(is_subscribed=True).values_list("app__name")
                   .annotate(n=Count("id")).values_list("app__name", "n"))
    events = ChannelEvent.objects.filter(occurred_at__gte=since)
    counts = {"scans": Count("id"), "new": Count("member", distinct=True,
                                                 filter=Q(is_new_member=True))}
    by_code = list(events.values("code__name").annotate(**counts).order_by("-scans")[
        :ATTRIBUTION_SHOWN])
    by_store = list(events.values("code__store__name").annotate(**counts).order_by("-scans")[
        :ATTRIBUTION_SHOWN])
    by_guide = list(events.exclude(guide_userid="").values("guide_userid").annotate(**counts)
                    .order_by("-scans")[:ATTRIBUTION_SHOWN])
    names = dict(WeComUser.objects.filter(userid__in=[row["guide_userid"] for row in by_guide])
                 .values_list("userid", "name"))
    for row in by_guide:
        row["name"] = names.get(row["guide_userid"]) or row["guide_userid"]
    return {
        "followers": sum(follows.values()), "by_app": sorted(follows.items()),
        "new_followers": Follower.objects.filter(subscribed_at__gte=since).count(),
        "wecom_customers": ContactRelation.objects.filter(
            status=ContactRelation.Status.ACTIVE).values("member_id").distinct().count(),
        "new_contacts": ContactRelation.objects.filter(added_at__gte=since).count(),
        "groups": GroupChat.objects.filter(dismissed_at__isnull=True).count(),
        "group_members": GroupMember.objects.filter(
            left_at__isnull=True, type=GroupMember.Type.EXTERNAL).count(),
        "by_code": by_code, "by_store": by_store, "by_guide": by_guide,
    }


def register() -> None:
    report_register(name="channels", compute=channels_report, periods=PERIODS)
