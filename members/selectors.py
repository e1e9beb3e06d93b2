from collections.abc import Iterable

from django.db import connection
from django.db.models import Prefetch, QuerySet

from members.identities import normalize_identity
from members.models import Member, MemberIdentity, MemberStats, Order, TimelineEvent
from members.rows import columns_of, instance_from, width_of
from scrm.access import Actor
from scrm.models import Store
from scrm.tenancy import require_tenant_id


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


def members_with_relations(*, member_ids: Iterable[int]) -> list[Member]:
    """The members with their store and ``stats_list`` (``identity_list`` is the caller's),
    in one query and without a queryset: the upsert's lookup."""
    ids = sorted(member_ids)
    store_at = width_of(Member)
    stats_at = store_at + width_of(Store)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns_of(Member, 'm')}, {columns_of(Store, 's')}, "  # noqa: S608
            f"{columns_of(MemberStats, 'st')} FROM members_member m "
            "LEFT JOIN scrm_store s ON s.tenant_id = m.tenant_id AND s.id = m.store_id "
            "LEFT JOIN members_memberstats st "
            "ON st.tenant_id = m.tenant_id AND st.member_id = m.id "
            f"WHERE m.tenant_id = %s AND m.id IN ({', '.join(['%s'] * len(ids))})",
            [require_tenant_id(), *ids],
        )
        rows = cursor.fetchall()
    members = []
    for row in rows:
        member = instance_from(Member, row[:store_at])
        if row[store_at] is not None:
            member.store = instance_from(Store, row[store_at:stats_at])
        has_stats = row[stats_at] is not None
        member.stats_list = [instance_from(MemberStats, row[stats_at:])] if has_stats else []
        members.append(member)
    return members


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


def member_notes(*, member: Member) -> QuerySet:
    """The guides' notes on the member, newest first."""
    from members.models import MemberNote

    return MemberNote.objects.filter(member=member).order_by("-created_at", "-id")


def member_consents(*, member: Member) -> QuerySet:
    """The member's consent history, newest first."""
    from members.models import MemberConsent

    return MemberConsent.objects.filter(member=member).order_by("-id")


def member_consent_state(*, member: Member) -> dict:
    """The current consent per purpose, as the member row mirrors the latest statements."""
    return {"marketing": member.marketing_consent, "profiling": member.profiling_consent,
            "updated_at": member.consent_updated_at}
