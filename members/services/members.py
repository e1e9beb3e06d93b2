from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members import signals
from members.identities import Identity, mask_phone, normalize_identities
from members.models import (
    Gender,
    IdentityKind,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberStats,
    TimelineEvent,
)
from members.rows import rows_insert, rows_insert_together, rows_select
from members.selectors import members_with_relations
from members.services.numbers import member_keys_allocate
from members.services.stats import member_stats_initial
from scrm import crypto
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.events import event_record
from scrm.tenancy import require_tenant_id

PROFILE_FIELDS = (
    "name",
    "gender",
    "birthday",
    "province",
    "city",
    "source_channel",
    "first_touch",
    "store",
    "guide",
    "marketing_consent",
)
UPSERT_ATTEMPTS = 3


def _timeline_event(
    *, member: Member, kind: str, data: dict | None = None, actor: str = "", occurred_at=None
) -> TimelineEvent:
    return TimelineEvent(
        tenant_id=member.tenant_id,
        member=member,
        kind=kind,
        data=data or {},
        actor=actor,
        occurred_at=occurred_at or timezone.now(),
    )


def timeline_add(
    *, member: Member, kind: str, data: dict | None = None, actor: str = "", occurred_at=None
) -> TimelineEvent:
    event = _timeline_event(member=member, kind=kind, data=data, actor=actor,
                            occurred_at=occurred_at)
    event.save()
    return event


def _identity_condition(identities: Iterable[Identity]) -> Q:
    condition = Q()
    for identity in identities:
        condition |= Q(kind=identity.kind, app_id=identity.app_id, value=identity.value)
    return condition


def identities_lookup(identities: Iterable[Identity]) -> list[MemberIdentity]:
    return list(
        MemberIdentity.objects.filter(_identity_condition(identities)).select_related("member")
    )


def _members_found(identities: list[Identity]) -> tuple[list[MemberIdentity], list[Member]]:
    """Every identity of the members that any of ``identities`` points at (in id order) and
    those members, oldest first, with their store and ``stats_list``.  Without querysets,
    since every upsert starts here; a new person costs one single-table query."""
    tenant_id = require_tenant_id()
    matches = " OR ".join(["(kind = %s AND app_id = %s AND value = %s)"] * len(identities))
    found = rows_select(
        MemberIdentity,
        where=f"tenant_id = %s AND ({matches})",
        params=[tenant_id, *(part for identity in identities for part in identity.key)],
    )
    if not found:
        return [], []
    member_ids = sorted({row.member_id for row in found})
    rows = rows_select(
        MemberIdentity,
        where=f"tenant_id = %s AND member_id IN ({', '.join(['%s'] * len(member_ids))})",
        params=[tenant_id, *member_ids],
        order_by="id",
    )
    members = members_with_relations(member_ids=member_ids)
    return rows, sorted(members, key=lambda m: (m.created_at, m.pk))


def _identity_rows(
    member: Member, identities: Iterable[Identity], known: set[tuple[str, str, str]], now
) -> list[MemberIdentity]:
    """Unsaved rows for the identities not in ``known``."""
    return [
        MemberIdentity(
            tenant_id=member.tenant_id,
            member=member,
            kind=identity.kind,
            app_id=identity.app_id,
            value=identity.value,
            display=identity.display,
            value_encrypted=identity.encrypted,
            created_at=now,
        )
        for identity in identities
        if identity.key not in known
    ]


def _identity_events(rows: list[MemberIdentity], actor: str) -> list[TimelineEvent]:
    return [
        _timeline_event(
            member=row.member,
            kind=TimelineEvent.Kind.IDENTITY_ADDED,
            actor=actor,
            data={"kind": row.kind, "app_id": row.app_id, "display": row.display},
        )
        for row in rows
    ]


def _row(instance: Model) -> dict[str, Any]:
    """An instance's column values, for ``rows_insert`` (its id only when it has one)."""
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields
            if not f.primary_key or instance.pk is not None}


def identities_attach(
    *, member: Member, identities: Iterable[Identity], known: set[tuple[str, str, str]], actor: str
) -> list[MemberIdentity]:
    now = timezone.now()
    added = _identity_rows(member, identities, known, now)
    for row, pk in zip(added, rows_insert(MemberIdentity, [_row(r) for r in added], now=now),
                       strict=True):
        row.pk = pk
    rows_insert(TimelineEvent, [_row(event) for event in _identity_events(added, actor)],
                now=now, returning=False)
    return added


def _phone_apply(member: Member, phone: str) -> None:
    member.phone_encrypted = crypto.encrypt(phone)
    member.phone_hash = crypto.blind_index(phone)
    member.phone_masked = mask_phone(phone)


def _profile_apply(member: Member, profile: dict[str, Any]) -> list[str]:
    changed = []
    for field in PROFILE_FIELDS:
        if field in profile and getattr(member, field) != profile[field]:
            setattr(member, field, profile[field])
            changed.append(field)
    if "marketing_consent" in changed:
        member.consent_updated_at = timezone.now()
    return changed


def _member_visible(actor: Actor, member: Member) -> bool:
    if actor.guide_id is not None:
        return member.guide_id == actor.guide_id
    if actor.store_id is not None:
        return member.store_id == actor.store_id
    return True


def _scope_defaults(actor: Actor, profile: dict[str, Any]) -> dict[str, Any]:
    """Guides and store managers create members in their own book."""
    if actor.guide_id is not None:
        profile = {**profile, "guide": actor.membership, "store": actor.membership.store}
    elif actor.store_id is not None:
        profile = {**profile, "store": actor.membership.store}
    return profile


def _member_create(*, actor: Actor, identities: list[Identity], profile: dict) -> Member:
    """A new member and what every member has (identities, stats, the timeline's first
    events), written in one round trip: the member's id is allocated first."""
    ((member_id, member_no),) = member_keys_allocate(tenant_id=actor.tenant.pk, count=1)
    now = timezone.now()
    member = Member(pk=member_id, tenant_id=actor.tenant.pk, member_no=member_no,
                    created_at=now, updated_at=now)
    _profile_apply(member, _scope_defaults(actor, profile))
    phone = next((i.plain for i in identities if i.kind == IdentityKind.PHONE), None)
    if phone:
        _phone_apply(member, phone)
    added = _identity_rows(member, identities, set(), now)
    created = _timeline_event(
        member=member,
        kind=TimelineEvent.Kind.CREATED,
        actor=actor.label,
        data={"source_channel": member.source_channel},
    )
    events = [created, *_identity_events(added, actor.label)]
    stats = member_stats_initial(member=member, now=now)  # every member has a stats row
    rows_insert_together(
        [
            (Member, [_row(member)]),
            (MemberIdentity, [_row(row) for row in added]),
            (TimelineEvent, [_row(event) for event in events]),
            (MemberStats, [_row(stats)]),
        ],
        now=now,
    )
    member._state.adding, member._state.db = False, connection.alias
    member.identity_list, member.stats_list = added, [stats]
    if member.marketing_consent:
        _consent_history(actor, member)
    signals.members_changed.send(sender=Member, tenant_id=member.tenant_id,
                                 member_ids=[member.pk], member_nos=[member.member_no])
    event_record(tenant_id=member.tenant_id, type="member.created", occurred_at=now,
                 data={"member_id": member.pk, "member_no": member.member_no,
                       "source_channel": member.source_channel})
    transaction.on_commit(
        lambda: signals.member_created.send(
            sender=Member, tenant_id=member.tenant_id, member_id=member.pk
        )
    )
    return member


def _gaps(member: Member, defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults for fields the member has no value for yet."""
    return {key: value for key, value in defaults.items()
            if getattr(member, key) in (None, "", Gender.UNKNOWN)}


def _resolve(*, actor: Actor, identities: list[Identity], profile: dict,
             defaults: dict) -> tuple[Member, str]:
    from members.services.merge import member_merge

    rows, members = _members_found(identities)
    if not members:
        member = _member_create(actor=actor, identities=identities,
                                profile={**defaults, **profile})
        return member, "created"
    survivor, outcome = members[0], "updated"
    for other in members[1:]:
        member_merge(
            actor=actor, survivor=survivor, merged=other, reason=MemberMerge.Reason.AUTOMATIC
        )
        outcome = "merged"
    if not _member_visible(actor, survivor):
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    added = identities_attach(
        member=survivor,
        identities=identities,
        known={(r.kind, r.app_id, r.value) for r in rows},
        actor=actor.label,
    )
    if outcome == "updated":  # after a merge the rows read above are out of date
        survivor.identity_list = [r for r in rows if r.member_id == survivor.pk] + added
    if not survivor.phone_hash:
        phone = next((i.plain for i in identities if i.kind == IdentityKind.PHONE), None)
        if phone:
            _phone_apply(survivor, phone)
            survivor.save(update_fields=["phone_encrypted", "phone_hash", "phone_masked"])
    member_update(actor=actor, member=survivor, profile={**_gaps(survivor, defaults), **profile})
    return survivor, outcome


def member_upsert(
    *, actor: Actor, identities: list[dict], profile: dict | None = None,
    defaults: dict | None = None,
) -> tuple[Member, str]:
    """Find the member any of ``identities`` points at and update them, create one when none
    does, or merge several into the oldest.  Returns the member and
    ``"created" | "updated" | "merged"``.  ``profile`` overwrites; ``defaults`` only fills
    fields the member has no value for (what an order says about its buyer).  A concurrent
    upsert of the same new identity makes one of them retry, and the retry finds the other's
    member.  A created or updated member comes with its store, ``identity_list`` and
    ``stats_list`` as they stand after the upsert, as ``selectors.member_list`` loads them;
    a merged one does not."""
    normalized = normalize_identities(identities)
    for attempt in range(UPSERT_ATTEMPTS):
        try:
            with transaction.atomic():
                return _resolve(actor=actor, identities=normalized, profile=profile or {},
                                defaults=defaults or {})
        except IntegrityError:
            if attempt == UPSERT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic(savepoint=False)  # nothing in here is worth retrying on its own
def member_update(*, actor: Actor, member: Member, profile: dict[str, Any]) -> Member:
    changed = _profile_apply(member, profile)
    if changed:
        member.save(
            update_fields=[*changed, "consent_updated_at", "updated_at"]
            if "marketing_consent" in changed
            else [*changed, "updated_at"]
        )
        data = {
            field: str(getattr(member, field))
            for field in changed
            if field not in ("store", "guide")
        }
        timeline_add(
            member=member,
            kind=TimelineEvent.Kind.UPDATED,
            actor=actor.label,
            data={"changed": changed, "values": data},
        )
        if "marketing_consent" in changed:
            _consent_history(actor, member)
        signals.members_changed.send(sender=Member, tenant_id=member.tenant_id,
                                     member_ids=[member.pk], member_nos=[member.member_no])
        event_record(tenant_id=member.tenant_id, type="member.updated",
                     data={"member_id": member.pk, "changed": changed})
        transaction.on_commit(
            lambda: signals.member_updated.send(
                sender=Member, tenant_id=member.tenant_id, member_id=member.pk, changed=changed
            )
        )
    return member


def _consent_history(actor: Actor, member: Member) -> None:
    """The consent history follows every change of ``marketing_consent`` made here."""
    from members.services.consent import consent_history_add

    consent_history_add(actor=actor, member=member, purpose="marketing",
                        granted=member.marketing_consent)


def member_phone_reveal(*, actor: Actor, member: Member, ip: str | None = None) -> str:
    """The full phone number, for roles that may see personal data; every view is audited."""
    if not actor.can("pii:read"):
        raise ApplicationError(_("当前角色无权查看完整手机号。"), code="permission_denied",
                               status_code=403)
    audit_record(actor=actor, action="member.phone_viewed", target=member, ip=ip)
    return crypto.decrypt(member.phone_encrypted) if member.phone_encrypted else ""


PEOPLE_LOCK = 0x6D656D62  # the first of the two advisory-lock keys: "memb"


def people_creation_lock(tenant_id: int) -> None:
    """Set-based writers of one tenant's new people (bulk order batches, import chunks)
    take turns from their identity lookup to commit.  Two that meet the same new person
    would each create them: one would then fail on the identity and start over, or, where
    it skips conflicting identities, leave a duplicate member.  Measured with three
    concurrent bulk clients, most batches ran two or three times: waiting costs less."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [PEOPLE_LOCK, tenant_id])
