"""Members from a file, one chunk of rows at a time, in the caller's transaction.

Identities go through ``people_resolve`` (OneID in a handful of set-based statements: new
members written with COPY, known ones found, several merged).  What the row says about the
person only fills gaps (a name, a phone, a store the member has not got yet), in one
statement that skips members it would not change; tags go through ``tag_apply_chunk``;
opening balances through ``opening_balances_grant``.  Running a chunk again changes
nothing."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.utils.translation import gettext as _

from integrations.transfers.models import ImportKind
from integrations.transfers.services import rows as R
from integrations.transfers.services.opening import Grant, opening_balances_grant
from members.models import Member
from members.services.people import Record, people_resolve
from scrm.access import Actor
from scrm.models import Store
from tags.audience.index import audience_mark_dirty
from tags.models import MemberTag, Tag, TagGroup
from tags.services.tagging import tag_apply_chunk
from tags.services.taxonomy import tag_group_save, tag_save

TAGGABLE = (Tag.Kind.MANUAL, Tag.Kind.SYNCED)

GAPS_SQL = f"""
UPDATE {Member._meta.db_table} m SET
    name = CASE WHEN m.name = '' THEN v.name ELSE m.name END,
    gender = CASE WHEN m.gender = 'unknown' AND v.gender NOT IN ('', 'unknown')
                  THEN v.gender ELSE m.gender END,
    birthday = coalesce(m.birthday, v.birthday),
    province = CASE WHEN m.province = '' THEN v.province ELSE m.province END,
    city = CASE WHEN m.city = '' THEN v.city ELSE m.city END,
    store_id = coalesce(m.store_id, v.store_id),
    updated_at = now()
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::date[], %s::text[], %s::text[],
            %s::bigint[]) AS v (id, name, gender, birthday, province, city, store_id)
WHERE m.tenant_id = %s AND m.id = v.id AND (
    (m.name = '' AND v.name <> '') OR (m.gender = 'unknown' AND v.gender NOT IN ('', 'unknown'))
    OR (m.birthday IS NULL AND v.birthday IS NOT NULL)
    OR (m.province = '' AND v.province <> '') OR (m.city = '' AND v.city <> '')
    OR (m.store_id IS NULL AND v.store_id IS NOT NULL))
RETURNING m.id
"""  # noqa: S608
PHONE_SQL = f"""
UPDATE {Member._meta.db_table} m SET phone_encrypted = v.encrypted, phone_hash = v.hash,
    phone_masked = v.masked, updated_at = now()
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v (id, encrypted, hash, masked)
WHERE m.tenant_id = %s AND m.id = v.id AND m.phone_hash = ''
RETURNING m.id
"""  # noqa: S608


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    tagged: int = 0
    points: int = 0
    issues: list[R.Issue] = field(default_factory=list)

    def add(self, other: "Outcome") -> None:
        self.created += other.created
        self.updated += other.updated
        self.tagged += other.tagged
        self.points += other.points


def member_row_read(*, mapping: list[dict], number: int, cells: list[str]) -> R.Row:
    row = R.row_read(kind=ImportKind.MEMBERS, mapping=mapping, number=number, cells=cells)
    row.data = {
        "name": R.text(row, "name", 64), "gender": R.gender(row),
        "birthday": R.day(row, "birthday"), "province": R.text(row, "province", 32),
        "city": R.text(row, "city", 32), "store": R.text(row, "store", 64),
        "tags": R.tags(row), "points": R.points(row),
    }
    R.require_identity(row)
    return row


class Chunk:
    """Checks what needs the database (stores, tags), then writes."""

    def __init__(self, *, actor: Actor, rows: list[R.Row]) -> None:
        self.actor = actor
        self.rows = rows
        self.stores: dict[str, int] = {}
        self.tags: dict[tuple[str, str], Tag | None] = {}

    def check(self) -> list[R.Row]:
        """The rows that would go in; the others carry their issues."""
        codes = {row.data["store"] for row in self.rows if row.data.get("store")}
        self.stores = dict(Store.objects.filter(code__in=sorted(codes)).values_list("code", "pk"))
        wanted = {pair for row in self.rows for pair in row.data.get("tags", [])}
        self.tags = _tags_known(wanted)
        for row in self.rows:
            if row.issues:
                continue
            store = row.data["store"]
            if store and store not in self.stores:
                row.fail("store", "store_unknown", _("门店编码不存在：%(code)s") % {"code": store})
            for group, name in row.data["tags"]:
                tag = self.tags.get((group, name))
                if tag is not None and (tag.kind not in TAGGABLE
                                        or tag.target == Tag.Target.PRODUCT):
                    row.fail("tags", "tag_not_manual", _("“%(name)s”不能手工打在会员身上。") % {
                        "name": name})
        return [row for row in self.rows if not row.issues]

    def write(self) -> Outcome:
        good = self.check()
        outcome = Outcome(issues=[issue for row in self.rows for issue in row.issues])
        if not good:
            return outcome
        resolved = people_resolve(actor=self.actor, source_channel="import", records=[
            Record(identities=row.identities, profile=self._profile(row)) for row in good])
        outcome.created = sum(1 for r in resolved if r.created)
        created = {r.member_id for r in resolved if r.created}
        # New members were written whole; known ones get the gaps filled.
        known = [(row, r.member_id, r.member_no) for row, r in zip(good, resolved, strict=True)
                 if r.member_id not in created]
        changed = self._gaps_fill(known) | self._phones_fill(known)
        outcome.updated = len(changed)
        members = [(row, r.member_id, r.member_no) for row, r in zip(good, resolved, strict=True)]
        if changed:
            audience_mark_dirty(member_ids=sorted(changed))
        outcome.tagged = self._tags_apply(members)
        granted, refused = opening_balances_grant(actor=self.actor, grants=[
            Grant(row.number, member_id, row.data["points"])
            for row, member_id, _no in members if row.data["points"]])
        outcome.points = granted
        outcome.issues += [R.Issue(grant.row, "points", exc.code, str(exc.detail))
                           for grant, exc in refused]
        return outcome

    def _profile(self, row: R.Row) -> dict:
        return {"name": row.data["name"], "gender": row.data["gender"],
                "province": row.data["province"], "city": row.data["city"],
                "birthday": row.data["birthday"], "phone": row.phone,
                "store_id": self.stores.get(row.data["store"])}

    def _gaps_fill(self, members: list[tuple[R.Row, int, int]]) -> set[int]:
        first: dict[int, R.Row] = {}
        for row, member_id, _no in members:
            first.setdefault(member_id, row)
        items = [(member_id, row.data) for member_id, row in first.items()
                 if any(row.data[k] for k in ("name", "gender", "birthday", "province", "city",
                                              "store"))]
        if not items:
            return set()
        if connection.vendor != "postgresql":
            return _gaps_fill_orm(items, self.stores)
        with connection.cursor() as cursor:
            cursor.execute(GAPS_SQL, [
                [m for m, _d in items], [d["name"] for _m, d in items],
                [d["gender"] for _m, d in items], [d["birthday"] for _m, d in items],
                [d["province"] for _m, d in items], [d["city"] for _m, d in items],
                [self.stores.get(d["store"]) for _m, d in items], self.actor.tenant.pk])
            return {row[0] for row in cursor.fetchall()}

    def _phones_fill(self, members: list[tuple[R.Row, int, int]]) -> set[int]:
        phones: dict[int, R.Identity] = {}
        for row, member_id, _no in members:
            if row.phone is not None:
                phones.setdefault(member_id, row.phone)
        if not phones:
            return set()
        # Only members without a phone need its encrypted copy (encrypting costs ~20 µs).
        missing = set(Member.objects.filter(pk__in=list(phones), phone_hash="")
                      .values_list("pk", flat=True))
        items = [(m, phones[m]) for m in sorted(missing)]
        if not items:
            return set()
        if connection.vendor != "postgresql":
            for member_id, phone in items:
                Member.objects.filter(pk=member_id, phone_hash="").update(
                    phone_encrypted=phone.encrypted, phone_hash=phone.value,
                    phone_masked=phone.display)
            return missing
        with connection.cursor() as cursor:
            cursor.execute(PHONE_SQL, [[m for m, _p in items], [p.encrypted for _m, p in items],
                                       [p.value for _m, p in items],
                                       [p.display for _m, p in items], self.actor.tenant.pk])
            return {row[0] for row in cursor.fetchall()}

    def _tags_apply(self, members: list[tuple[R.Row, int, int]]) -> int:
        by_tag: dict[tuple[str, str], set[int]] = defaultdict(set)
        for row, _member_id, member_no in members:
            for pair in row.data["tags"]:
                by_tag[pair].add(member_no)
        tagged = 0
        for pair, member_nos in sorted(by_tag.items()):
            tag = self.tags.get(pair) or _tag_create(self.actor, *pair)
            self.tags[pair] = tag
            tagged += tag_apply_chunk(tag=tag, action="add", member_nos=sorted(member_nos),
                                      actor=self.actor.label, source=MemberTag.Source.MANUAL)
        return tagged


def _tags_known(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Tag | None]:
    if not pairs:
        return {}
    found = Tag.objects.filter(group__name__in={g for g, _n in pairs},
                               name__in={n for _g, n in pairs}).select_related("group")
    known = {(tag.group.name, tag.name): tag for tag in found}
    return {pair: known.get(pair) for pair in pairs}


def _tag_create(actor: Actor, group_name: str, name: str) -> Tag:
    group = TagGroup.objects.filter(name=group_name).first() or tag_group_save(
        actor=actor, name=group_name)
    return tag_save(actor=actor, group=group, name=name, kind=Tag.Kind.MANUAL,
                    target=Tag.Target.MEMBER)


def _gaps_fill_orm(items: list[tuple[int, dict]], stores: dict[str, int]) -> set[int]:
    """The quick start's (SQLite) way of ``GAPS_SQL``."""
    members = Member.objects.in_bulk([member_id for member_id, _data in items])
    changed = set()
    for member_id, data in items:
        member, fields = members[member_id], []
        for name in ("name", "province", "city"):
            if not getattr(member, name) and data[name]:
                setattr(member, name, data[name])
                fields.append(name)
        if member.gender == "unknown" and data["gender"] not in ("", "unknown"):
            member.gender = data["gender"]
            fields.append("gender")
        if member.birthday is None and data["birthday"]:
            member.birthday = data["birthday"]
            fields.append("birthday")
        if member.store_id is None and data["store"]:
            member.store_id = stores[data["store"]]
            fields.append("store")
        if fields:
            member.save(update_fields=[*fields, "updated_at"])
            changed.add(member_id)
    return changed
