"""OneID for a whole staging table at once, in set-based SQL (PostgreSQL): what
``people.people_resolve`` does for a list of records, for the million-row syncs that stage
their rows with COPY (the OA follower sync).

The caller creates the table with ``people_stage_create``, fills ``n`` (its own row number),
``own`` (the record's own id, e.g. the openid), ``shared`` (an id several apps share, e.g. the
unionid, or NULL) and ``first_touch``, and calls ``people_stage_resolve``, which fills
``member_id``, ``member_no`` and ``created`` for every row:

* each id is looked up (one unique-index probe each);
* rows sharing a ``shared`` id are one person;
* a person no id points at becomes a new member (its id from the members table's own
  sequence, its number from the tenant's member_no sequence) with its stats row, its
  identities and its "created" timeline event; the other rows of that person attach to it;
* a person one member is found for gets the missing identities ("identity.added" events);
* a person whose ids point at two members is left to ``people_resolve`` (``member_upsert``
  merges them), row by row, after the set-based part: rare, and it needs the merge logic.

New members are announced with ``members_changed`` (the audience index marks them dirty in
this transaction), as ``people_resolve`` does.  Only token kinds (no encrypted personal
data) and no profile fields: what a platform id and a unionid bring.  Runs in the caller's
transaction; running it again for the same rows creates nothing.
"""

import json

from django.db import connection
from django.utils import timezone

from members import signals
from members.identities import normalize_identity
from members.models import SENSITIVE_KINDS, Member, TimelineEvent
from members.services.numbers import member_no_sequence
from members.services.people import Record, people_resolve
from scrm.access import Actor
from scrm.events import events_record

CREATE = """
CREATE TEMPORARY TABLE people_stage (
    n integer PRIMARY KEY,  -- the caller's row number
    own text NOT NULL,      -- the record's own id (kind and app fixed per call)
    shared text,            -- an id shared across apps (unionid), or NULL
    first_touch jsonb NOT NULL,
    own_member bigint,      -- the members these ids point at before this call
    shared_member bigint,
    member_id bigint,
    member_no integer,
    created boolean NOT NULL DEFAULT false,  -- this row's person is a new member
    merge boolean NOT NULL DEFAULT false     -- its ids point at two members
) ON COMMIT DROP
"""

# One unique-index probe per id (a scalar subquery, so the planner cannot choose to scan
# the whole identity table instead, as a hash join would once it is large).
LOOKUP = """
UPDATE people_stage s SET
    own_member = (SELECT i.member_id FROM members_memberidentity i
                  WHERE i.tenant_id = %(tenant)s AND i.kind = %(own_kind)s
                    AND i.app_id = %(own_app)s AND i.value = s.own),
    shared_member = CASE WHEN s.shared IS NOT NULL THEN (
                  SELECT i.member_id FROM members_memberidentity i
                  WHERE i.tenant_id = %(tenant)s AND i.kind = %(shared_kind)s
                    AND i.app_id = '' AND i.value = s.shared) END
"""

# One row per person: rows sharing a shared id, or a row alone.  ``targets`` counts the
# distinct members the person's ids point at: 0 new, 1 found, 2 or more to merge.
PEOPLE = """
CREATE TEMPORARY TABLE people_groups ON COMMIT DROP AS
SELECT coalesce('s:' || s.shared, 'n:' || s.n) AS person, min(s.n) AS leader,
       count(DISTINCT t.member) AS targets, min(t.member) AS target,
       bool_or(s.shared_member IS NOT NULL) AS has_shared,
       NULL::bigint AS member_id, NULL::integer AS member_no
FROM people_stage s CROSS JOIN LATERAL (VALUES (s.own_member), (s.shared_member)) t (member)
GROUP BY 1
"""

# New people get their keys in page order; found ones their member's number.
KEYS = """
UPDATE people_groups p SET member_id = k.id, member_no = k.no
FROM (SELECT person, nextval(pg_get_serial_sequence('members_member', 'id')) AS id,
             nextval(%(sequence)s::regclass)::integer AS no
      FROM (SELECT person FROM people_groups WHERE targets = 0 ORDER BY leader) o) k
WHERE p.person = k.person;
UPDATE people_groups p SET member_id = p.target,
    member_no = (SELECT m.member_no FROM members_member m
                 WHERE m.tenant_id = %(tenant)s AND m.id = p.target)
WHERE p.targets = 1;
UPDATE people_stage s SET member_id = p.member_id, member_no = p.member_no,
    created = (p.targets = 0 AND s.n = p.leader), merge = (p.targets > 1)
FROM people_groups p WHERE p.person = coalesce('s:' || s.shared, 'n:' || s.n)
"""

# What every new member has: the member, its stats row, its "created" event, its ids.
MEMBERS = """
INSERT INTO members_member (id, tenant_id, member_no, name, gender, province, city,
    phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
    marketing_consent, status, created_at, updated_at)
SELECT member_id, %(tenant)s, member_no, '', 'unknown', '', '', '', '', '', %(source)s,
       first_touch, false, 'active', %(now)s, %(now)s
FROM people_stage WHERE created ORDER BY n;
INSERT INTO members_memberstats (tenant_id, member_id, order_count, total_spent_fen,
    refunded_fen, updated_at)
SELECT %(tenant)s, member_id, 0, 0, 0, %(now)s FROM people_stage WHERE created ORDER BY n;
INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at, data, actor)
SELECT %(tenant)s, member_id, %(created_kind)s, %(now)s, %(created_data)s::jsonb, %(actor)s
FROM people_stage WHERE created ORDER BY n;
INSERT INTO members_memberidentity (tenant_id, member_id, kind, app_id, value,
    value_encrypted, display, created_at)
SELECT %(tenant)s, member_id, %(own_kind)s, %(own_app)s, own, '', own, %(now)s
FROM people_stage WHERE created
UNION ALL
SELECT %(tenant)s, member_id, %(shared_kind)s, '', shared, '', shared, %(now)s
FROM people_stage WHERE created AND shared IS NOT NULL
ON CONFLICT DO NOTHING
"""

# Ids a known member (or a member another row of this call created) did not have yet, each
# with its "identity.added" event, written only for the identities really inserted.
ATTACH = """
WITH wanted AS (
    SELECT member_id, %(own_kind)s AS kind, %(own_app)s AS app_id, own AS value
    FROM people_stage WHERE NOT created AND NOT merge AND own_member IS NULL
    UNION ALL
    SELECT DISTINCT ON (p.person) s.member_id, %(shared_kind)s, '', s.shared
    FROM people_stage s JOIN people_groups p ON p.person = 's:' || s.shared
    WHERE p.targets = 1 AND NOT p.has_shared
), added AS (
    INSERT INTO members_memberidentity (tenant_id, member_id, kind, app_id, value,
        value_encrypted, display, created_at)
    SELECT %(tenant)s, member_id, kind, app_id, value, '', value, %(now)s FROM wanted
    ON CONFLICT DO NOTHING
    RETURNING member_id, kind, app_id, display
)
INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at, data, actor)
SELECT %(tenant)s, member_id, %(added_kind)s, %(now)s,
       jsonb_build_object('kind', kind, 'app_id', app_id, 'display', display), %(actor)s
FROM added
"""


def people_stage_create() -> str:
    """The empty staging table (dropped at commit); returns its name."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS people_stage")
        cursor.execute(CREATE)
    return "people_stage"


def people_stage_resolve(*, actor: Actor, source_channel: str, own_kind: str,
                         own_app: str = "", shared_kind: str) -> None:
    """Fill ``member_id``, ``member_no`` and ``created`` of every staged row (see the module
    docstring)."""
    if own_kind in SENSITIVE_KINDS or shared_kind in SENSITIVE_KINDS:
        raise ValueError("staged OneID takes token kinds only (no personal data)")
    tenant_id = actor.tenant.pk
    params = {
        "tenant": tenant_id, "own_kind": own_kind, "own_app": own_app,
        "shared_kind": shared_kind, "source": source_channel, "now": timezone.now(),
        "actor": actor.label, "sequence": member_no_sequence(tenant_id=tenant_id),
        "created_kind": TimelineEvent.Kind.CREATED,
        "added_kind": TimelineEvent.Kind.IDENTITY_ADDED,
        "created_data": json.dumps({"source_channel": source_channel}),
    }
    with connection.cursor() as cursor:
        for statement in (LOOKUP, PEOPLE, KEYS, MEMBERS, ATTACH):
            cursor.execute(statement, params)
        cursor.execute("SELECT member_id, member_no FROM people_stage WHERE created ORDER BY n")
        new = cursor.fetchall()
        cursor.execute("SELECT n, own, shared, first_touch FROM people_stage WHERE merge "
                       "ORDER BY n")
        merges = cursor.fetchall()
        cursor.execute("DROP TABLE people_groups")
    if new:
        signals.members_changed.send(sender=Member, tenant_id=tenant_id,
                                     member_ids=[row[0] for row in new],
                                     member_nos=[row[1] for row in new])
        events_record(tenant_id=tenant_id, type="member.created", payloads=[
            {"member_id": member_id, "member_no": number, "source_channel": source_channel}
            for member_id, number in new])
    if merges:
        _merge_rows(actor, source_channel, own_kind, own_app, shared_kind, merges)


def _merge_rows(actor: Actor, source_channel: str, own_kind: str, own_app: str,
                shared_kind: str, rows: list[tuple]) -> None:
    """Rows whose ids point at two members: the Python path, which merges them."""
    records = [Record(identities=[normalize_identity(own_kind, own, own_app)]
                      + ([normalize_identity(shared_kind, shared)] if shared else []),
                      first_touch=json.loads(touch) if isinstance(touch, str) else touch)
               for _n, own, shared, touch in rows]
    resolved = people_resolve(actor=actor, records=records, source_channel=source_channel)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE people_stage s SET member_id = r.member_id, member_no = r.member_no, "
            "created = r.created FROM unnest(%s::integer[], %s::bigint[], %s::integer[], "
            "%s::boolean[]) r (n, member_id, member_no, created) WHERE s.n = r.n",
            [[row[0] for row in rows], [r.member_id for r in resolved],
             [r.member_no for r in resolved], [r.created for r in resolved]])
