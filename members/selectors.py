from django.db.models import Prefetch, QuerySet

from members.identities import normalize_identity
from members.models import Member, MemberIdentity, MemberStats, Order, TimelineEvent
from scrm.access import Actor


def member_visible(*, actor: Actor) -> QuerySet[Member]:
    """The members this actor may see: a guide only their own customers, a store manager
    only their store's, everyone else the whole tenant."""
    queryset = Member.objects.all()
    if actor.guide_id is not None:
        queryset = queryset.filter(guide_id=actor.guide_id)
    elif actor.store_id is not None:
        queryset = queryset.filter(store_id=actor.store_id)
    return queryset


def order_visible(*, actor: Actor) -> QuerySet[Order]:
    """The orders of the members this actor may see."""
    queryset = Order.objects.all()
    if actor.guide_id is not None or actor.store_id is not None:
        queryset = queryset.filter(member__in=member_visible(actor=actor))
    return queryset


def member_relations() -> list[Prefetch]:
    """What a member's answer shows besides its own row: ``identity_list`` (in id order) and
    ``stats_list``."""
    return [
        Prefetch(
            "identities", queryset=MemberIdentity.objects.order_by("id"), to_attr="identity_list"
        ),
        Prefetch("stats", queryset=MemberStats.objects.all(), to_attr="stats_list"),
    ]


def member_stats_list(*, member: Member) -> list[MemberStats]:
    return list(MemberStats.objects.filter(member_id=member.pk))


def member_list(*, actor: Actor, filters: dict | None = None) -> QuerySet[Member]:
    filters = filters or {}
    queryset = (
        member_visible(actor=actor).select_related("store").prefetch_related(*member_relations())
    )
    if filters.get("identity_kind") and filters.get("identity_value"):
        identity = normalize_identity(
            filters["identity_kind"], filters["identity_value"], filters.get("identity_app_id", "")
        )
        queryset = queryset.filter(
            identities__kind=identity.kind,
            identities__app_id=identity.app_id,
            identities__value=identity.value,
        )
    if filters.get("store"):
        queryset = queryset.filter(store__code=filters["store"])
    if filters.get("guide"):
        queryset = queryset.filter(guide_id=filters["guide"])
    if filters.get("created_after"):
        queryset = queryset.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        queryset = queryset.filter(created_at__lt=filters["created_before"])
    if not filters.get("include_merged"):
        queryset = queryset.filter(status=Member.Status.ACTIVE)
    return queryset


def member_get(*, actor: Actor, member_id: int) -> Member | None:
    return member_list(actor=actor, filters={"include_merged": True}).filter(pk=member_id).first()


def member_timeline(*, member: Member) -> QuerySet[TimelineEvent]:
    return TimelineEvent.objects.filter(member=member).order_by("-occurred_at", "-id")
