"""Members from a file, one chunk of rows at a time, in the caller's transaction.

On PostgreSQL the rows are staged with COPY and ``people_rows_resolve`` finds, creates or
merges their members in a handful of set-based statements (the quick start's SQLite goes
through ``people_resolve``).  What a row says about a known person only fills gaps (a name, a
phone, a store the member has not got yet), skipping members it would not change; tags go
through ``tag_apply_chunk``; opening balances through ``opening_balances_grant``.  Running a
chunk again changes nothing."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from integrations.transfers.models import ImportKind
from integrations.transfers.services import rows as R
from integrations.transfers.services.opening import Grant, opening_balances_grant
from members.models import Gender, Member
from members.services.people import Record, people_resolve
from members.services.people_rows import (
    PersonRow,
    Staged,
    people_rows_resolve,
    people_rows_stage,
)
from scrm.access import Actor
from scrm.models import Store
from tags.audience.index import audience_mark_dirty
from tags.models import MemberTag, Tag, TagGroup
from tags.services.tagging import tag_apply_chunk
from tags.services.taxonomy import tag_group_save, tag_save

TAGGABLE = (Tag.Kind.MANUAL, Tag.Kind.SYNCED)
PROFILE_FIELDS = ("name", "gender", "birthday", "province", "city", "store")


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


@dataclass
class Parsed:
    rows: list[R.Row]
    staged: Staged | None = None  # a run's staging payloads (PostgreSQL)


def member_rows_read(*, mapping: list[dict], rows: list[tuple[int, list[str]]],
                     stage: bool) -> Parsed:
    """A chunk's rows read through the mapping, and with ``stage`` (a run on PostgreSQL)
    their staging payloads, personal data encrypted.  No database: the import runs it in the
    thread that reads ahead while the chunk before is written (measured: staging there took
    a third of the Python time off the writing thread)."""
    parsed = [member_row_read(mapping=mapping, number=number, cells=cells)
              for number, cells in rows]
    if not stage:
        return Parsed(parsed)
    return Parsed(parsed, people_rows_stage([
        PersonRow(n=row.number, identities=row.identities,
                  profile={name: row.data[name] for name in PROFILE_FIELDS})
        for row in parsed if not row.issues]))


class Chunk:
    """Checks what needs the database (stores, tags), then writes."""

    def __init__(self, *, actor: Actor, rows: list[R.Row], staged: Staged | None = None
                 ) -> None:
        self.actor = actor
        self.rows = rows
        self.staged = staged
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
        if self.staged is None:
            members, outcome.created, outcome.updated = self._resolve(good)
        else:
            members, outcome.created, outcome.updated = self._resolve_staged(good, self.staged)
        outcome.tagged = self._tags_apply(members)
        granted, refused = opening_balances_grant(actor=self.actor, grants=[
            Grant(row.number, member_id, row.data["points"])
            for row, member_id, _no in members if row.data["points"]])
        outcome.points = granted
        outcome.issues += [R.Issue(grant.row, "points", exc.code, str(exc.detail))
                           for grant, exc in refused]
        return outcome

    def _resolve_staged(self, good: list[R.Row], staged: Staged
                        ) -> tuple[list[tuple[R.Row, int, int]], int, int]:
        """PostgreSQL: the rows' members found, created or merged, and their gaps filled, in
        a handful of set-based statements (``people_rows``); rows the checks refused are
        left out of the staged ones."""
        resolved = people_rows_resolve(
            actor=self.actor, source_channel="import", staged=staged,
            skip=[row.number for row in self.rows if row.issues])
        members = [(row, *resolved.members[row.number]) for row in good]
        return members, resolved.created, resolved.updated

    def _resolve(self, good: list[R.Row]) -> tuple[list[tuple[R.Row, int, int]], int, int]:
        """The quick start's (SQLite) way: ``people_resolve``, then the gaps filled."""
        resolved = people_resolve(actor=self.actor, source_channel="import", records=[
            Record(identities=row.identities, profile=self._profile(row)) for row in good])
        created = {r.member_id for r in resolved if r.created}
        # New members were written whole from their first row; the other rows fill gaps.
        others = [(row, r.member_id, r.member_no) for row, r in zip(good, resolved, strict=True)
                  if not r.created]
        changed = self._gaps_fill(others) | self._phones_fill(others)
        if changed:
            audience_mark_dirty(member_ids=sorted(changed))
        members = [(row, r.member_id, r.member_no) for row, r in zip(good, resolved, strict=True)]
        return members, len(created), len(changed - created)

    def _profile(self, row: R.Row) -> dict:
        return {"name": row.data["name"], "gender": row.data["gender"],
                "province": row.data["province"], "city": row.data["city"],
                "birthday": row.data["birthday"], "phone": row.phone,
                "store_id": self.stores.get(row.data["store"])}

    def _gaps_fill(self, members: list[tuple[R.Row, int, int]]) -> set[int]:
        """Field by field, the first of a member's rows that has a value."""
        values: dict[int, dict] = defaultdict(dict)
        for row, member_id, _no in members:
            for name in PROFILE_FIELDS:
                value = row.data[name]
                if value and not (name == "gender" and value == Gender.UNKNOWN):
                    values[member_id].setdefault(name, value)
        items = [(member_id, data) for member_id, data in values.items() if data]
        return _gaps_fill_orm(items, self.stores) if items else set()

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
        for member_id, phone in items:
            Member.objects.filter(pk=member_id, phone_hash="").update(
                phone_encrypted=phone.encrypted, phone_hash=phone.value,
                phone_masked=phone.display)
        return missing

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
    """The quick start's (SQLite) way of ``people_rows``' gap filling."""
    members = Member.objects.in_bulk([member_id for member_id, _data in items])
    changed = set()
    for member_id, data in items:
        member, fields = members[member_id], []
        for name in ("name", "province", "city"):
            if not getattr(member, name) and data.get(name):
                setattr(member, name, data[name])
                fields.append(name)
        if member.gender == "unknown" and data.get("gender"):
            member.gender = data["gender"]
            fields.append("gender")
        if member.birthday is None and data.get("birthday"):
            member.birthday = data["birthday"]
            fields.append("birthday")
        if member.store_id is None and data.get("store"):
            member.store_id = stores[data["store"]]
            fields.append("store")
        if fields:
            member.save(update_fields=[*fields, "updated_at"])
            changed.add(member_id)
    return changed
