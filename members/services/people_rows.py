"""OneID for a chunk of file rows (an import) in set-based SQL (PostgreSQL): what
``people.people_resolve`` does for records, for rows that carry any identities and a profile,
staged with one COPY each for the rows and their ids, as ``people_staged`` does for the
follower sync.

Rows that share an id are one person (grouped here, before staging).  Each staged id is looked
up with one unique-index probe.  A person whose ids point at two or more members goes through
``member_upsert`` first, which merges them into the oldest; the ids are then looked up again,
so every other row finds the survivor.  Then, in a handful of statements:

* a person no id points at becomes a new member (its id from the members table's sequence,
  its number from the tenant's) with its first row's profile and phone, its stats row and
  its "created" timeline event;
* every id nobody holds yet goes to its row's member, with an "identity.added" event unless
  it came with the row that created the member;
* the other rows fill their member's gaps, field by field from the first row that has a
  value: a name, a gender, a birthday, a province, a city, a store or a phone it has not got.
  Members they would not change are not rewritten.

New members and members whose gaps were filled are announced with ``members_changed`` (the
audience index marks them dirty in this transaction), new ones also with ``member.created``
events, as ``people_resolve`` announces them.  Runs in the caller's transaction; running it
again for the same rows changes nothing.
"""

import io
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection
from django.utils import timezone

from members import signals
from members.identities import Identity
from members.models import IdentityKind, Member, MemberIdentity, TimelineEvent
from members.services.members import member_upsert, people_creation_lock
from members.services.numbers import member_no_sequence
from scrm.access import Actor
from scrm.db.copy import COPY_BUFFER, NULL, copy_payload, planner_stats_refresh
from scrm.events import events_record, is_wanted

MAX_MERGE_ROUNDS = 3

CREATE = """
DROP TABLE IF EXISTS people_rows;
DROP TABLE IF EXISTS people_row_ids;
CREATE TEMPORARY TABLE people_rows (
    n integer PRIMARY KEY,     -- the caller's row number
    person integer NOT NULL,   -- the first row of the rows sharing an id with this one
    name text NOT NULL,
    gender text NOT NULL,
    birthday date,
    province text NOT NULL,
    city text NOT NULL,
    store text NOT NULL,       -- a store's code, or ''
    member_id bigint,
    member_no integer,
    created boolean NOT NULL DEFAULT false  -- the row that created its person's member
) ON COMMIT DROP;
CREATE TEMPORARY TABLE people_row_ids (
    n integer NOT NULL,
    kind text NOT NULL,
    app_id text NOT NULL,
    value text NOT NULL,
    value_encrypted text NOT NULL,
    display text NOT NULL,
    held_by bigint             -- the member this id points at before this call
) ON COMMIT DROP
"""
COPY_ROWS = ("COPY people_rows (n, person, name, gender, birthday, province, city, store) "
             f"FROM STDIN WITH (FORMAT csv, NULL '{NULL}', FORCE_NULL (birthday))")
STORE = """CASE WHEN r.store <> '' THEN (SELECT s.id FROM scrm_store s
    WHERE s.tenant_id = %(tenant)s AND s.code = r.store) END"""
COPY_IDS = ("COPY people_row_ids (n, kind, app_id, value, value_encrypted, display) "
            f"FROM STDIN WITH (FORMAT csv, NULL '{NULL}')")

# One unique-index probe per id (a scalar subquery, so the planner cannot choose to scan
# the whole identity table instead).  Then one row per person: how many members its ids
# point at (0 new, 1 found, 2 or more to merge).
LOOKUP = """
UPDATE people_row_ids s SET held_by = (
    SELECT i.member_id FROM members_memberidentity i
    WHERE i.tenant_id = %(tenant)s AND i.kind = s.kind AND i.app_id = s.app_id
      AND i.value = s.value);
DROP TABLE IF EXISTS people_row_groups;
CREATE TEMPORARY TABLE people_row_groups ON COMMIT DROP AS
SELECT r.person, count(DISTINCT i.held_by) AS targets, min(i.held_by) AS target,
       NULL::bigint AS member_id, NULL::integer AS member_no
FROM people_rows r JOIN people_row_ids i ON i.n = r.n
GROUP BY r.person
"""
MERGING = """
SELECT r.n FROM people_rows r JOIN people_row_groups g ON g.person = r.person
WHERE g.targets > 1 ORDER BY r.n
"""

# New people get their keys in row order; found ones their member's number.
KEYS = """
UPDATE people_row_groups g SET member_id = k.id, member_no = k.no
FROM (SELECT person, nextval(%(ids)s::regclass) AS id,
             nextval(%(numbers)s::regclass)::integer AS no
      FROM (SELECT person FROM people_row_groups WHERE targets = 0 ORDER BY person) o) k
WHERE g.person = k.person;
UPDATE people_row_groups g SET member_id = g.target,
    member_no = (SELECT m.member_no FROM members_member m
                 WHERE m.tenant_id = %(tenant)s AND m.id = g.target)
WHERE g.targets = 1;
UPDATE people_rows r SET member_id = g.member_id, member_no = g.member_no,
    created = (g.targets = 0 AND r.n = g.person)
FROM people_row_groups g WHERE g.person = r.person
"""

# What every new member has: the member (with its first row's phone), its stats row, its
# "created" event.
MEMBERS = f"""
INSERT INTO members_member (id, tenant_id, member_no, name, gender, birthday, province, city,
    store_id, phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
    marketing_consent, status, created_at, updated_at)
SELECT r.member_id, %(tenant)s, r.member_no, r.name, coalesce(nullif(r.gender, ''), 'unknown'),
       r.birthday, r.province, r.city, {STORE}, coalesce(p.value_encrypted, ''),
       coalesce(p.value, ''), coalesce(p.display, ''), %(source)s, '{{}}', false, 'active',
       %(now)s, %(now)s
FROM people_rows r LEFT JOIN (
    SELECT DISTINCT ON (n) n, value, value_encrypted, display FROM people_row_ids
    WHERE kind = %(phone)s ORDER BY n) p ON p.n = r.n
WHERE r.created ORDER BY r.n;
INSERT INTO members_memberstats (tenant_id, member_id, order_count, total_spent_fen,
    refunded_fen, updated_at)
SELECT %(tenant)s, member_id, 0, 0, 0, %(now)s FROM people_rows WHERE created ORDER BY n;
INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at, data, actor)
SELECT %(tenant)s, member_id, %(created_kind)s, %(now)s, %(created_data)s::jsonb, %(actor)s
FROM people_rows WHERE created ORDER BY n
"""  # noqa: S608 - STORE is a fixed fragment

# Every id nobody held yet goes to its row's member (the first row naming it wins); those
# that did not come with the row creating the member are announced, as ``member_upsert``
# announces them.
IDENTITIES = """
WITH wanted AS MATERIALIZED (
    SELECT DISTINCT ON (i.kind, i.app_id, i.value) i.kind, i.app_id, i.value,
           i.value_encrypted, i.display, r.member_id, r.created
    FROM people_row_ids i JOIN people_rows r ON r.n = i.n
    WHERE i.held_by IS NULL
    ORDER BY i.kind, i.app_id, i.value, i.n
), added AS (
    INSERT INTO members_memberidentity (tenant_id, member_id, kind, app_id, value,
        value_encrypted, display, created_at)
    SELECT %(tenant)s, member_id, kind, app_id, value, value_encrypted, display, %(now)s
    FROM wanted
    ON CONFLICT DO NOTHING
    RETURNING kind, app_id, value
)
INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at, data, actor)
SELECT %(tenant)s, w.member_id, %(added_kind)s, %(now)s,
       jsonb_build_object('kind', w.kind, 'app_id', w.app_id, 'display', w.display), %(actor)s
FROM added a JOIN wanted w USING (kind, app_id, value)
WHERE NOT w.created
"""

# The rows of each member, but the one that created it, fill the member's gaps: for each
# field, the first row that has a value.
GAPS = """
UPDATE members_member m SET
    name = CASE WHEN m.name = '' THEN coalesce(v.name, '') ELSE m.name END,
    gender = CASE WHEN m.gender = 'unknown' THEN coalesce(v.gender, m.gender)
                  ELSE m.gender END,
    birthday = coalesce(m.birthday, v.birthday),
    province = CASE WHEN m.province = '' THEN coalesce(v.province, '') ELSE m.province END,
    city = CASE WHEN m.city = '' THEN coalesce(v.city, '') ELSE m.city END,
    store_id = coalesce(m.store_id, (SELECT s.id FROM scrm_store s
                                     WHERE s.tenant_id = %(tenant)s AND s.code = v.store)),
    updated_at = %(now)s
FROM (SELECT member_id,
             (array_agg(name ORDER BY n) FILTER (WHERE name <> ''))[1] AS name,
             (array_agg(gender ORDER BY n) FILTER (
                 WHERE gender NOT IN ('', 'unknown')))[1] AS gender,
             (array_agg(birthday ORDER BY n) FILTER (WHERE birthday IS NOT NULL))[1]
                 AS birthday,
             (array_agg(province ORDER BY n) FILTER (WHERE province <> ''))[1] AS province,
             (array_agg(city ORDER BY n) FILTER (WHERE city <> ''))[1] AS city,
             (array_agg(store ORDER BY n) FILTER (WHERE store <> ''))[1] AS store
      FROM people_rows WHERE NOT created GROUP BY member_id) v
WHERE m.tenant_id = %(tenant)s AND m.id = v.member_id AND (
    (m.name = '' AND v.name IS NOT NULL) OR (m.gender = 'unknown' AND v.gender IS NOT NULL)
    OR (m.birthday IS NULL AND v.birthday IS NOT NULL)
    OR (m.province = '' AND v.province IS NOT NULL) OR (m.city = '' AND v.city IS NOT NULL)
    OR (m.store_id IS NULL AND v.store IS NOT NULL))
RETURNING m.id, m.member_no
"""
# A member without a phone takes the first of its rows' phones.
PHONES = """
UPDATE members_member m SET phone_encrypted = v.value_encrypted, phone_hash = v.value,
    phone_masked = v.display, updated_at = %(now)s
FROM (SELECT DISTINCT ON (r.member_id) r.member_id, i.value, i.value_encrypted, i.display
      FROM people_rows r JOIN people_row_ids i ON i.n = r.n AND i.kind = %(phone)s
      ORDER BY r.member_id, r.n) v
WHERE m.tenant_id = %(tenant)s AND m.id = v.member_id AND m.phone_hash = ''
RETURNING m.id, m.member_no
"""


@dataclass
class PersonRow:
    n: int  # the caller's row number, unique in the call
    identities: list[Identity]  # at least one
    # name, gender, birthday, province, city, store (a store's code); each may be empty
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass
class Staged:
    """A chunk's rows as the staging tables' COPY payloads, made without the database."""

    rows: list[PersonRow]
    people: bytes
    ids: bytes


@dataclass
class RowsResolved:
    members: dict[int, tuple[int, int]]  # row number -> (member id, member number)
    created: int  # new members
    updated: int  # existing members whose gaps the rows filled


def _persons(rows: list[PersonRow]) -> dict[int, int]:
    """Row number -> the first row of its person (rows sharing an id, transitively)."""
    parent: dict[int, int] = {}
    owner: dict[tuple[str, str, str], int] = {}

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for row in rows:
        parent[row.n] = row.n
        for identity in row.identities:
            other = owner.setdefault(identity.key, row.n)
            if other != row.n:
                first, second = sorted((find(other), find(row.n)))
                parent[second] = first
    return {row.n: find(row.n) for row in rows}


def people_rows_stage(rows: list[PersonRow]) -> Staged:
    """The payloads for ``people_rows_resolve`` (no database, so an import makes them in the
    thread that reads ahead, encrypting the personal data there)."""
    persons = _persons(rows)
    people, ids = [], []
    for row in rows:
        profile = row.profile
        birthday: date | None = profile.get("birthday")
        people.append((row.n, persons[row.n], profile.get("name", ""),
                       profile.get("gender", ""), birthday.isoformat() if birthday else NULL,
                       profile.get("province", ""), profile.get("city", ""),
                       profile.get("store", "")))
        ids += [(i.kind, i.app_id, i.value, row.n, i.encrypted, i.display)
                for i in row.identities]
    # In index order: each chunk's probes and inserts walk the identity index once.
    ids.sort()
    staged_ids = [(n, kind, app_id, value, encrypted, display)
                  for kind, app_id, value, n, encrypted, display in ids]
    return Staged(rows, copy_payload(people, plain=True), copy_payload(staged_ids, plain=True))


def _merge(actor: Actor, staged: Staged, params: dict) -> None:
    """Persons whose ids point at several members: merged through ``member_upsert``, then
    every id looked up again (rare; the merge needs the Python path)."""
    by_number = {row.n: row for row in staged.rows}
    with connection.cursor() as cursor:
        for _round in range(MAX_MERGE_ROUNDS):
            cursor.execute(LOOKUP, params)
            cursor.execute(MERGING)
            merging = [by_number[n] for (n,) in cursor.fetchall()]
            if not merging:
                return
            for row in merging:
                member_upsert(actor=actor, identities=[
                    {"kind": i.kind, "app_id": i.app_id, "value": i.plain}
                    for i in row.identities])
    raise RuntimeError("ids still point at several members after merging")


def people_rows_resolve(*, actor: Actor, source_channel: str, staged: Staged,
                        skip: Collection[int] = ()) -> RowsResolved:
    """The member of every staged row but those numbered in ``skip``, found, created or
    merged, with the gaps of found members filled (see the module docstring)."""
    if skip:  # staged again: a row left out must not join two others into one person
        left_out = set(skip)
        staged = people_rows_stage([row for row in staged.rows if row.n not in left_out])
    if not staged.rows:
        return RowsResolved({}, 0, 0)
    people_creation_lock(actor.tenant.pk)
    params = _params(actor, source_channel)
    # A first import grows both tables far faster than autovacuum analyzes them; on stale
    # statistics the planner filters every member of the tenant for each chunk's ids
    # instead of probing them (measured: the cost grew with the table, 0.3 s a chunk at 50k).
    planner_stats_refresh(Member, MemberIdentity)
    with connection.cursor() as cursor:
        cursor.execute(CREATE)
        cursor.copy_expert(COPY_ROWS, io.BytesIO(staged.people), size=COPY_BUFFER)
        cursor.copy_expert(COPY_IDS, io.BytesIO(staged.ids), size=COPY_BUFFER)
    _merge(actor, staged, params)
    resolved, changed = _write(params)
    new = sorted((member_id, number) for _n, member_id, number, created in resolved if created)
    created_ids = {member_id for member_id, _number in new}
    updated = {m: no for m, no in changed.items() if m not in created_ids}
    _announce(actor.tenant.pk, source_channel, new, updated)
    return RowsResolved(members={n: (m, no) for n, m, no, _created in resolved},
                        created=len(new), updated=len(updated))


def _params(actor: Actor, source_channel: str) -> dict[str, Any]:
    tenant_id = actor.tenant.pk
    with connection.cursor() as cursor:
        # Looked up once: per row, pg_get_serial_sequence would search the catalog each time.
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Member._meta.db_table])
        ids = cursor.fetchone()[0]
    return {
        "tenant": tenant_id, "source": source_channel, "now": timezone.now(),
        "actor": actor.label[:64], "ids": ids,
        "numbers": member_no_sequence(tenant_id=tenant_id), "phone": IdentityKind.PHONE,
        "created_kind": TimelineEvent.Kind.CREATED,
        "added_kind": TimelineEvent.Kind.IDENTITY_ADDED,
        "created_data": json.dumps({"source_channel": source_channel}),
    }


def _write(params: dict[str, Any]) -> tuple[list[tuple], dict[int, int]]:
    """(row number, member id, member number, created) per row, and the members whose gaps
    were filled (id -> number)."""
    with connection.cursor() as cursor:
        for statement in (KEYS, MEMBERS, IDENTITIES):
            cursor.execute(statement, params)
        cursor.execute(GAPS, params)
        changed = dict(cursor.fetchall())
        cursor.execute(PHONES, params)
        changed.update(cursor.fetchall())
        cursor.execute("SELECT n, member_id, member_no, created FROM people_rows")
        resolved = cursor.fetchall()
        cursor.execute("DROP TABLE people_rows, people_row_ids, people_row_groups")
    return resolved, changed


def _announce(tenant_id: int, source_channel: str, new: list[tuple[int, int]],
              updated: dict[int, int]) -> None:
    changed = [*new, *updated.items()]
    if changed:
        signals.members_changed.send(sender=Member, tenant_id=tenant_id,
                                     member_ids=[m for m, _no in changed],
                                     member_nos=[no for _m, no in changed])
    if new and is_wanted(tenant_id=tenant_id, type="member.created"):
        events_record(tenant_id=tenant_id, type="member.created", payloads=[
            {"member_id": member_id, "member_no": number, "source_channel": source_channel}
            for member_id, number in new])
