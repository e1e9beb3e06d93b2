"""OneID for many records at once (a page of OA followers, a page of WeCom customers): the
member each record is, found or created in a handful of set-based statements.

Each record brings identities (its platform id first, a unionid when known).  One query finds
the members they point at: none, and the record becomes a new member (members, stats,
identities and "created" timeline events written with COPY); one, and the record's missing
identities are attached to it; several, and the record goes through ``member_upsert``, which
merges them.  Callers run this inside their own transaction, with the page's other writes.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from members import signals
from members.identities import Identity
from members.models import Member, MemberIdentity, MemberStats, TimelineEvent
from members.services.members import member_upsert
from members.services.numbers import member_numbers_allocate
from scrm.access import Actor
from scrm.db.copy import rows_insert
from scrm.events import events_record
from scrm.tenancy import require_tenant_id

MEMBER_COLUMNS = ("id", "tenant_id", "member_no", "name", "gender", "province", "city",
                  "phone_encrypted", "phone_hash", "phone_masked", "source_channel",
                  "first_touch", "marketing_consent", "status", "created_at", "updated_at",
                  "birthday", "store_id")
PROFILE_FIELDS = ("name", "gender", "province", "city")


@dataclass
class Record:
    identities: list[Identity]  # the record's own id first
    # For a new member only: name, gender, province, city; an import adds phone (its
    # Identity), birthday and store_id.
    profile: dict[str, Any] = field(default_factory=dict)
    first_touch: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    member_id: int
    member_no: int
    created: bool


def _known(records: list[Record]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """identity key → (member id, member number), for every identity already held."""
    by_kind: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        for identity in record.identities:
            by_kind[(identity.kind, identity.app_id)].add(identity.value)
    if not by_kind:
        return {}
    if connection.vendor == "postgresql":
        return _known_postgres(by_kind)
    condition = Q()
    for (kind, app_id), values in by_kind.items():
        condition |= Q(kind=kind, app_id=app_id, value__in=sorted(values))
    rows = MemberIdentity.objects.filter(condition).values_list(
        "kind", "app_id", "value", "member_id", "member__member_no")
    return {(kind, app_id, value): (member_id, member_no)
            for kind, app_id, value, member_id, member_no in rows}


def _known_postgres(by_kind: dict[tuple[str, str], set[str]]) -> dict:
    """One array parameter per kind instead of an IN list of thousands of placeholders
    (building those costs more than the query)."""
    tenant_id = require_tenant_id()
    parts, params = [], []
    for (kind, app_id), values in by_kind.items():
        parts.append("(i.kind = %s AND i.app_id = %s AND i.value = ANY(%s))")
        params += [kind, app_id, list(values)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.kind, i.app_id, i.value, i.member_id, m.member_no "  # noqa: S608
            "FROM members_memberidentity i JOIN members_member m "
            "ON m.tenant_id = i.tenant_id AND m.id = i.member_id "
            f"WHERE i.tenant_id = %s AND ({' OR '.join(parts)})", [tenant_id, *params])
        return {(kind, app_id, value): (member_id, member_no)
                for kind, app_id, value, member_id, member_no in cursor.fetchall()}


class _Writes:
    def __init__(self, tenant_id: int, actor: str, source_channel: str) -> None:
        self.tenant_id, self.actor, self.source = tenant_id, actor, source_channel
        self.now = timezone.now()
        self.identities: list[tuple] = []
        self.timeline: list[tuple] = []
        self.changed_ids: list[int] = []
        self.changed_nos: list[int] = []

    def identity(self, member_id: int, identity: Identity, *, announce: bool) -> None:
        self.identities.append((self.tenant_id, member_id, identity.kind, identity.app_id,
                                identity.value, identity.encrypted, identity.display, self.now))
        if announce:
            self.timeline.append((self.tenant_id, member_id, TimelineEvent.Kind.IDENTITY_ADDED,
                                  self.now, {"kind": identity.kind, "app_id": identity.app_id,
                                             "display": identity.display}, self.actor))

    def flush(self) -> None:
        rows_insert(model=MemberIdentity, columns=(
            "tenant_id", "member_id", "kind", "app_id", "value", "value_encrypted", "display",
            "created_at"), rows=self.identities, ignore_conflicts=True)
        rows_insert(model=TimelineEvent, columns=(
            "tenant_id", "member_id", "kind", "occurred_at", "data", "actor"), rows=self.timeline)


def _new_members(writes: _Writes, records: list[Record]) -> list[Resolved]:
    if not records:
        return []
    tenant_id, now = writes.tenant_id, writes.now
    numbers = member_numbers_allocate(tenant_id=tenant_id, count=len(records))
    ids = _ids_reserve(len(records))
    members, stats = [], []
    for member_id, number, record in zip(ids, numbers, records, strict=True):
        profile = {name: record.profile.get(name, "") for name in PROFILE_FIELDS}
        # An import also knows the phone (an Identity), the birthday and the store's id.
        phone = record.profile.get("phone")
        members.append((member_id, tenant_id, number, profile["name"][:64],
                        profile["gender"] or "unknown", profile["province"][:32],
                        profile["city"][:32], phone.encrypted if phone else "",
                        phone.value if phone else "", phone.display if phone else "",
                        writes.source, record.first_touch, False, Member.Status.ACTIVE, now,
                        now, record.profile.get("birthday"), record.profile.get("store_id")))
        stats.append((tenant_id, member_id, 0, 0, 0, now))
        writes.timeline.append((tenant_id, member_id, TimelineEvent.Kind.CREATED, now,
                                {"source_channel": writes.source}, writes.actor))
        for identity in record.identities:
            writes.identity(member_id, identity, announce=False)
    rows_insert(model=Member, columns=MEMBER_COLUMNS, rows=members)
    rows_insert(model=MemberStats, columns=("tenant_id", "member_id", "order_count",
                                            "total_spent_fen", "refunded_fen", "updated_at"),
                rows=stats)
    writes.changed_ids += list(ids)
    writes.changed_nos += list(numbers)
    events_record(tenant_id=tenant_id, type="member.created", occurred_at=now, payloads=[
        {"member_id": member_id, "member_no": number, "source_channel": writes.source}
        for member_id, number in zip(ids, numbers, strict=True)])
    return [Resolved(member_id, number, True) for member_id, number in zip(ids, numbers,
                                                                          strict=True)]


def _ids_reserve(count: int) -> list[int]:
    from members.generator.writers import IdReserver

    return list(IdReserver(Member).reserve(count))


def people_resolve(*, actor: Actor, records: list[Record],
                   source_channel: str) -> list[Resolved]:
    """The member of each record, in order (see the module docstring).  A record whose
    identities point at several members is merged through ``member_upsert``."""
    tenant_id = actor.tenant.pk
    known = _known(records)
    writes = _Writes(tenant_id, actor.label, source_channel)
    results: list[Resolved | None] = [None] * len(records)
    fresh: list[int] = []
    for index, record in enumerate(records):
        found = {known[i.key] for i in record.identities if i.key in known}
        if not found:
            fresh.append(index)
        elif len(found) == 1:
            member_id, number = found.pop()
            for identity in record.identities:
                if identity.key not in known:
                    writes.identity(member_id, identity, announce=True)
                    known[identity.key] = (member_id, number)
            results[index] = Resolved(member_id, number, False)
    # A record that looked new may share an id that a later record of a known member has
    # just brought to that member: it is theirs, found one by one after the writes.
    fresh = [index for index in fresh
             if not any(identity.key in known for identity in records[index].identities)]
    unique_fresh = _first_of_each_person(records, fresh)
    created = _new_members(writes, [records[index] for index in unique_fresh])
    for index, resolved in zip(unique_fresh, created, strict=True):
        results[index] = resolved
    writes.flush()
    for index, record in enumerate(records):
        if results[index] is None:
            results[index] = _one_by_one(actor, record)
    _announce(tenant_id, writes.changed_ids, writes.changed_nos)
    return results  # type: ignore[return-value]


def _first_of_each_person(records: list[Record], indexes: list[int]) -> list[int]:
    """Two records of one page may share an identity (a unionid): the first one creates the
    member, the others find it afterwards."""
    seen: set[tuple[str, str, str]] = set()
    first = []
    for index in indexes:
        keys = {identity.key for identity in records[index].identities}
        if not keys & seen:
            first.append(index)
            seen |= keys
    return first


def _one_by_one(actor: Actor, record: Record) -> Resolved:
    """Records that need a merge, or that share an identity with an earlier new one."""
    member, outcome = member_upsert(actor=actor, identities=[
        {"kind": i.kind, "app_id": i.app_id, "value": i.plain} for i in record.identities])
    return Resolved(member.pk, member.member_no, outcome == "created")


def _announce(tenant_id: int, member_ids: list[int], member_nos: list[int]) -> None:
    """New members join the audience index (same transaction), and higher apps hear of
    them after commit as of a bulk load."""
    if not member_ids:
        return
    signals.members_changed.send(sender=Member, tenant_id=tenant_id, member_ids=member_ids,
                                 member_nos=member_nos)

