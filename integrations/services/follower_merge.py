"""One page of a full OA follower sync, merged on PostgreSQL in set-based SQL.

Python only streams the page's raw profile fields into a temporary table with COPY; then,
inside PostgreSQL: each row is compared with its follower row (one index probe), unchanged
followers stop there, the others go through staged OneID (``members.services.people_staged``:
new members with their stats, identities and timeline, identities attached to known
members, the rare merges), and their follower rows are upserted in one statement that skips
rows that would not change.  What the caller still does with the result (the follower tag,
"oa.subscribed" events for followers coming back, counts, the checkpoint) stays in
``followers.py``, shared with the SQLite path.
"""

import io
import json
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from integrations.models import Follower, OAApp
from members.identities import TOKEN_RE, normalize_identity
from members.models import IdentityKind, Member, MemberIdentity, SourceChannel
from members.services.people_staged import people_stage_create, people_stage_resolve
from scrm.access import Actor
from scrm.db.copy import COPY_BUFFER, planner_stats_refresh

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class PageMerged:
    """What writing a page did, whichever database wrote it."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    seen: list[int] = field(default_factory=list)  # member numbers of the page's followers
    followed: list[int] = field(default_factory=list)  # ... new or back: they get the tag
    resubscribed: list[int] = field(default_factory=list)  # member ids of those back


# Raw fields, as ``followers._follower_row`` reads them; ``own``/``shared`` are the openid and
# unionid as identities (normalised), ``scene``/``qr_scene`` untruncated (the first touch
# keeps them whole).  The follower_* columns say what the follower row holds now.
PAGE = """
CREATE TEMPORARY TABLE follower_page (
    n integer PRIMARY KEY, openid text NOT NULL, unionid text NOT NULL, own text NOT NULL,
    shared text, subscribe_time bigint, scene text NOT NULL, qr_scene text NOT NULL,
    remark text NOT NULL, language text NOT NULL, tags jsonb NOT NULL,
    follower_id bigint, was_subscribed boolean, member_no integer,
    unchanged boolean  -- NULL: no follower row yet
) ON COMMIT DROP
"""

# The follower row as this page says it should be (compared below, written by UPSERT).
WANTED = """p.unionid, true, to_timestamp(NULLIF(p.subscribe_time, 0)), NULL::timestamptz,
    left(p.scene, 40), left(p.qr_scene, 64), p.remark, p.language, p.tags"""
COLUMNS = """unionid, is_subscribed, subscribed_at, unsubscribed_at, subscribe_scene,
    qr_scene, remark, language, oa_tag_ids"""
CURRENT = """f.unionid, f.is_subscribed, f.subscribed_at, f.unsubscribed_at,
    f.subscribe_scene, f.qr_scene, f.remark, f.language, f.oa_tag_ids"""

# One probe of the (tenant, app, openid) index per row, never a scan of the whole table
# (a correlated subquery: the planner cannot turn it into a hash join).
COMPARE = f"""
UPDATE follower_page p SET (follower_id, was_subscribed, member_no, unchanged) = (
    SELECT f.id, f.is_subscribed, m.member_no,
           ({CURRENT}) IS NOT DISTINCT FROM ({WANTED})
    FROM integrations_follower f
    JOIN members_member m ON m.tenant_id = f.tenant_id AND m.id = f.member_id
    WHERE f.tenant_id = %(tenant)s AND f.app_id = %(app)s AND f.openid = p.openid)
"""  # noqa: S608 (constants only)

STAGE = """
INSERT INTO people_stage (n, own, shared, first_touch)
SELECT n, own, shared, jsonb_build_object('channel', %(channel)s, 'appid', %(appid)s,
                                          'scene', scene, 'qr_scene', qr_scene)
FROM follower_page WHERE unchanged IS NOT TRUE ORDER BY n
"""

# rows_upsert's rule: a known follower is rewritten (and its synced_at moved) only when one
# of its columns really changes.
UPSERT = f"""
INSERT INTO integrations_follower (tenant_id, app_id, member_id, openid, {COLUMNS}, synced_at)
SELECT %(tenant)s, %(app)s, s.member_id, p.openid, {WANTED}, %(now)s
FROM follower_page p JOIN people_stage s ON s.n = p.n ORDER BY p.n
ON CONFLICT (tenant_id, app_id, openid) DO UPDATE SET
    member_id = EXCLUDED.member_id, unionid = EXCLUDED.unionid,
    is_subscribed = EXCLUDED.is_subscribed, subscribed_at = EXCLUDED.subscribed_at,
    unsubscribed_at = EXCLUDED.unsubscribed_at, subscribe_scene = EXCLUDED.subscribe_scene,
    qr_scene = EXCLUDED.qr_scene, remark = EXCLUDED.remark, language = EXCLUDED.language,
    oa_tag_ids = EXCLUDED.oa_tag_ids, synced_at = EXCLUDED.synced_at
WHERE (integrations_follower.member_id, integrations_follower.unionid,
       integrations_follower.is_subscribed, integrations_follower.subscribed_at,
       integrations_follower.unsubscribed_at, integrations_follower.subscribe_scene,
       integrations_follower.qr_scene, integrations_follower.remark,
       integrations_follower.language, integrations_follower.oa_tag_ids)
   IS DISTINCT FROM (EXCLUDED.member_id, EXCLUDED.unionid, EXCLUDED.is_subscribed,
       EXCLUDED.subscribed_at, EXCLUDED.unsubscribed_at, EXCLUDED.subscribe_scene,
       EXCLUDED.qr_scene, EXCLUDED.remark, EXCLUDED.language, EXCLUDED.oa_tag_ids)
"""  # noqa: S608 (constants only)

RESULT = """
SELECT count(*) FILTER (WHERE p.unchanged), count(*) FILTER (WHERE s.created),
       count(*) FILTER (WHERE p.unchanged IS NOT TRUE),
       array_agg(coalesce(s.member_no, p.member_no)),
       array_agg(s.member_no) FILTER (WHERE p.was_subscribed IS NOT TRUE),
       array_agg(s.member_id) FILTER (WHERE p.was_subscribed IS FALSE AND NOT s.created)
FROM follower_page p LEFT JOIN people_stage s ON s.n = p.n
"""


def _text(value: str) -> str:
    return value.translate(_ESCAPES)


def _token(kind: str, value: str, app_id: str = "") -> str:
    """The identity value OneID keys on; ``normalize_identity`` (and its error) only for a
    value that is not already a plain token."""
    return value if TOKEN_RE.match(value) else normalize_identity(kind, value, app_id).value


def _payload(app: OAApp, infos: list[dict]) -> bytes:
    """The page in COPY's text format: one line per follower, the columns of PAGE."""
    lines = []
    for n, info in enumerate(infos):
        openid, unionid = info["openid"], info.get("unionid") or ""
        seconds = info.get("subscribe_time")
        lines.append("\t".join((
            str(n), _text(openid), _text(unionid),
            _text(_token(IdentityKind.WECHAT_OPENID, openid, app.appid)),
            _text(_token(IdentityKind.WECHAT_UNIONID, unionid)) if unionid else NULL,
            str(int(seconds)) if seconds else NULL,
            _text(info.get("subscribe_scene", "")),
            _text(info.get("qr_scene_str", "") or str(info.get("qr_scene") or "")),
            _text(info.get("remark", "")[:64]), _text(info.get("language", "")[:16]),
            _text(json.dumps(sorted(info.get("tagid_list") or []))))))
    lines.append("")
    return "\n".join(lines).encode()


def page_merge(*, actor: Actor, app: OAApp, infos: list[dict]) -> PageMerged:
    """Write one page of subscribed followers (distinct openids), in the caller's
    transaction, which also holds the job's checkpoint."""
    if not infos:
        return PageMerged()
    params = {"tenant": app.tenant_id, "app": app.pk, "appid": app.appid,
              "channel": SourceChannel.WECHAT_OA, "now": timezone.now()}
    with connection.cursor() as cursor:
        # A sync commits a page at a time and each page carries its own checkpoint, so it
        # need not wait for the WAL flush: should PostgreSQL crash, at most the last few
        # pages' commits are lost (never half of one), their checkpoints with them, and the
        # resumed job fetches and writes those pages again.  WAL is replayed in order, so
        # any later synchronous commit that could depend on them flushes them first.
        # JIT compilation costs more than it saves on statements this size.
        cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off")
        planner_stats_refresh(Follower, MemberIdentity, Member)  # the tables probed per row
        cursor.execute("DROP TABLE IF EXISTS follower_page")
        cursor.execute(PAGE)
        cursor.copy_expert("COPY follower_page (n, openid, unionid, own, shared, "
                           "subscribe_time, scene, qr_scene, remark, language, tags) FROM STDIN",
                           io.BytesIO(_payload(app, infos)), size=COPY_BUFFER)
        cursor.execute(COMPARE, params)
        people_stage_create()
        cursor.execute(STAGE, params)
        people_stage_resolve(actor=actor, source_channel=SourceChannel.WECHAT_OA,
                             own_kind=IdentityKind.WECHAT_OPENID, own_app=app.appid,
                             shared_kind=IdentityKind.WECHAT_UNIONID)
        cursor.execute(UPSERT, params)
        cursor.execute(RESULT)
        unchanged, created, changed, seen, followed, back = cursor.fetchone()
        cursor.execute("DROP TABLE follower_page; DROP TABLE people_stage")
    return PageMerged(created=created, updated=changed - created, unchanged=unchanged,
                      seen=seen or [], followed=followed or [], resubscribed=back or [])
