"""Official Account followers: the full sync (a job, page by page, resumable) and the changes
callbacks bring (subscribe, unsubscribe).

A full sync pages ``user/get`` (10,000 openids a page), reads each page's profiles with
``user/info/batchget`` (100 a call, several calls at once) and writes the page in one
transaction: the members (OneID: by openid, then unionid), the follower rows (unchanged rows
are not rewritten), the app's follower tag, and the job's checkpoint (the cursor and the
members seen so far, as a bitmap).  A crashed or failed sync resumes from that checkpoint;
running a page twice changes nothing.  At the end, followers the list no longer holds are
marked unsubscribed; members are never deleted.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from pyroaring import BitMap

from integrations.models import Follower, OAApp
from integrations.services.connections import oa_api
from integrations.services.follower_merge import PageMerged, page_merge
from integrations.services.systemtags import follower_tag
from integrations.wechat.client import OAApi, WeChatApiError
from members.identities import normalize_identity
from members.models import IdentityKind, Member, SourceChannel, TimelineEvent
from members.services.people import Record, people_resolve
from scrm.access import Actor
from scrm.db.copy import rows_upsert
from scrm.events import event_record, events_record, is_wanted
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from tags.models import MemberTag
from tags.services.tagging import tag_apply_chunk

logger = logging.getLogger(__name__)

JOB_KIND = "oa_followers_sync"
BATCH = 100
INFO_WORKERS = 4
RETRIES = 6
FOLLOWER_COLUMNS = ("tenant_id", "app_id", "member_id", "openid", "unionid", "is_subscribed",
                    "subscribed_at", "unsubscribed_at", "subscribe_scene", "qr_scene", "remark",
                    "language", "oa_tag_ids", "synced_at")
# What a sync refreshes on a known follower (synced_at only moves with a real change).
FOLLOWER_UPDATES = ("member_id", "unionid", "is_subscribed", "subscribed_at",
                    "unsubscribed_at", "subscribe_scene", "qr_scene", "remark", "language",
                    "oa_tag_ids")


def with_backoff(call: Callable[[], Any], *, retries: int = RETRIES, base: float = 0.5) -> Any:
    """``call()``, again after 0.5, 1, 2, 4... s while WeChat is busy or rate-limiting."""
    for attempt in range(retries):
        try:
            return call()
        except WeChatApiError as exc:
            if not exc.is_retryable or attempt == retries - 1:
                raise
            delay = min(base * 2 ** attempt, 30)
            logger.info("wechat busy (%s); retrying in %.1fs", exc.errcode, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


# Starting and running the job


def followers_sync_start(*, actor: Actor, app: OAApp, enqueue: bool = True) -> Job:
    """Queue a full sync of the app's followers.  A sync already queued or running is
    answered instead; a failed one (quota, credentials, a crash) resumes from its
    checkpoint."""
    from integrations.tasks import followers_sync_task

    latest = Job.objects.filter(kind=JOB_KIND, params__app_id=app.pk).order_by("-pk").first()
    if latest is not None and latest.status in (Job.Status.PENDING, Job.Status.RUNNING):
        return latest
    if latest is not None and latest.status == Job.Status.FAILED:
        job = latest
        Job.objects.filter(pk=job.pk).update(status=Job.Status.PENDING, error="")
        job.status = Job.Status.PENDING
    else:
        job = job_create(actor=actor, kind=JOB_KIND,
                         params={"app_id": app.pk, "appid": app.appid})
    if enqueue:
        transaction.on_commit(lambda: followers_sync_task.delay(actor.tenant.pk, job.pk))
    return job


def followers_sync_run(*, job: Job, on_page: Callable[[int, int], None] | None = None) -> None:
    """Run (or resume) a full sync job; see the module docstring.  The next page downloads
    while this one is written (WeChat's rate limit and the database then overlap)."""
    app = OAApp.objects.get(pk=job.params["app_id"])
    actor = Actor(tenant=app.tenant, scopes=frozenset())
    state = _State(job)
    job_start(job=job)
    with ThreadPoolExecutor(INFO_WORKERS) as pool, ThreadPoolExecutor(1) as ahead:
        def fetch(cursor: str) -> tuple[dict, list[dict]]:
            page = with_backoff(lambda: _api(app).followers_page(cursor))
            openids = page.get("data", {}).get("openid") or []
            return page, _infos(app, openids, pool) if openids else []

        coming = ahead.submit(fetch, state.next_openid)
        while True:
            page, infos = coming.result()
            openids = page.get("data", {}).get("openid") or []
            state.total = max(state.total, int(page.get("total", 0)))
            if not openids:
                break
            cursor = page.get("next_openid") or openids[-1]
            coming = ahead.submit(fetch, cursor)
            with transaction.atomic():
                _page_write(actor=actor, app=app, infos=infos, state=state)
                state.next_openid = cursor
                state.save(job)
            if on_page:
                on_page(state.done, state.total)
    with transaction.atomic():
        state.counts["unsubscribed"] += _unseen_unsubscribe(app=app, seen=state.seen,
                                                           since=state.started_at)
    OAApp.objects.filter(pk=app.pk).update(last_sync_at=timezone.now(), last_error="")
    job_finish(job=job, result={**state.counts, "total": state.total})


class _State:
    """The job's checkpoint: cursor, members seen, counts."""

    def __init__(self, job: Job) -> None:
        checkpoint = job.checkpoint or {}
        self.next_openid: str = checkpoint.get("next_openid", "")
        self.total: int = job.total
        self.done: int = job.done
        self.started_at = datetime.fromisoformat(checkpoint["started_at"]) \
            if "started_at" in checkpoint else timezone.now()
        self.counts: dict[str, int] = {"created": 0, "updated": 0, "unchanged": 0,
                                       "unsubscribed": 0, **checkpoint.get("counts", {})}
        self.seen = BitMap.deserialize(bytes(job.payload)) if job.payload else BitMap()

    def save(self, job: Job) -> None:
        Job.objects.filter(pk=job.pk).update(total=self.total, payload=self.seen.serialize())
        job_progress(job=job, done=self.done, checkpoint={
            "next_openid": self.next_openid, "started_at": self.started_at.isoformat(),
            "counts": self.counts})


def _infos(app: OAApp, openids: list[str], pool: ThreadPoolExecutor) -> list[dict]:
    chunks = [openids[i:i + BATCH] for i in range(0, len(openids), BATCH)]

    def fetch(chunk: list[str]) -> list[dict]:
        try:
            return with_backoff(lambda: _api(app).users_info(chunk))
        finally:
            close_old_connections()

    return [info for infos in pool.map(fetch, chunks) for info in infos]


_apis: dict[tuple[int, str], OAApi] = {}


def _api(app: OAApp) -> OAApi:
    """One client per app and thread name: requests sessions are not shared across
    threads."""
    import threading

    key = (app.pk, threading.current_thread().name)
    if key not in _apis:
        _apis[key] = oa_api(app)
    return _apis[key]


# Writing a page


def _moment(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), tz=UTC) if seconds else None


def _record(app: OAApp, info: dict) -> Record:
    identities = [normalize_identity(IdentityKind.WECHAT_OPENID, info["openid"], app.appid)]
    if info.get("unionid"):
        identities.append(normalize_identity(IdentityKind.WECHAT_UNIONID, info["unionid"]))
    first_touch = {"channel": SourceChannel.WECHAT_OA, "appid": app.appid,
                   "scene": info.get("subscribe_scene", ""),
                   "qr_scene": info.get("qr_scene_str", "") or str(info.get("qr_scene") or "")}
    return Record(identities=identities, first_touch=first_touch)


def _page_write(*, actor: Actor, app: OAApp, infos: list[dict], state: _State) -> None:
    """One page of followers, in the caller's transaction: set-based SQL on PostgreSQL
    (``follower_merge``), the OneID service elsewhere (the SQLite quick start).  Followers
    whose row would not change (most of them, on every sync after the first) cost one
    read."""
    now = timezone.now()
    subscribed = {info["openid"]: info for info in infos if info.get("subscribe")}
    gone = [info["openid"] for info in infos if not info.get("subscribe")]
    merge = page_merge if connection.vendor == "postgresql" else _page_merge_python
    page = merge(actor=actor, app=app, infos=list(subscribed.values()))
    _tag(app, page.followed, add=True)
    _timeline_many(page.resubscribed, "oa.subscribed", app, now)
    _subscribed_events(app, member_nos=page.followed, openids=list(subscribed), at=now)
    state.seen |= BitMap(page.seen)
    state.counts["created"] += page.created
    state.counts["updated"] += page.updated
    state.counts["unchanged"] += page.unchanged
    state.counts["unsubscribed"] += followers_unsubscribe(app=app, openids=gone, at=now)
    state.done += len(subscribed) + len(gone)


def _page_merge_python(*, actor: Actor, app: OAApp, infos: list[dict]) -> PageMerged:
    now = timezone.now()
    existing = {row[0]: row for row in Follower.objects.filter(
        app=app, openid__in=[info["openid"] for info in infos]).values_list(
            "openid", *FOLLOWER_UPDATES, "member__member_no")}
    unchanged, changed = [], []
    for info in infos:
        same = _row_unchanged(app, info, existing.get(info["openid"]))
        (unchanged if same else changed).append(info)
    resolved = people_resolve(actor=actor, records=[_record(app, info) for info in changed],
                              source_channel=SourceChannel.WECHAT_OA)
    rows_upsert(model=Follower, columns=FOLLOWER_COLUMNS, conflict=("tenant_id", "app_id",
                                                                    "openid"),
                rows=[_follower_row(app, info, result.member_id, now)
                      for info, result in zip(changed, resolved, strict=True)],
                update=FOLLOWER_UPDATES, touch=("synced_at",))
    # was following: True, had left: False, new: None
    was = [existing[info["openid"]][3] if info["openid"] in existing else None
           for info in changed]
    created = sum(r.created for r in resolved)
    return PageMerged(
        created=created, updated=len(resolved) - created, unchanged=len(unchanged),
        seen=[existing[info["openid"]][-1] for info in unchanged]
        + [r.member_no for r in resolved],
        followed=[r.member_no for r, w in zip(resolved, was, strict=True) if w is not True],
        resubscribed=[r.member_id for r, w in zip(resolved, was, strict=True)
                      if w is False and not r.created])


def _row_unchanged(app: OAApp, info: dict, row: tuple | None) -> bool:
    """``row`` (openid, *FOLLOWER_UPDATES, member_no) already says what ``info`` says."""
    if row is None:
        return False
    wanted = _follower_row(app, info, row[1], None)
    current = dict(zip(FOLLOWER_UPDATES, row[1:-1], strict=True))
    fresh = dict(zip(FOLLOWER_COLUMNS, wanted, strict=True))
    return all(current[name] == fresh[name] for name in FOLLOWER_UPDATES)


def _follower_row(app: OAApp, info: dict, member_id: int, now: datetime) -> tuple:
    return (app.tenant_id, app.pk, member_id, info["openid"], info.get("unionid", ""), True,
            _moment(info.get("subscribe_time")), None, info.get("subscribe_scene", "")[:40],
            (info.get("qr_scene_str") or str(info.get("qr_scene") or ""))[:64],
            info.get("remark", "")[:64], info.get("language", "")[:16],
            sorted(info.get("tagid_list") or []), now)


def _tag(app: OAApp, member_nos: list[int], *, add: bool) -> None:
    if member_nos:
        tag_apply_chunk(tag=follower_tag(app), action="add" if add else "remove",
                        member_nos=member_nos, actor="system", source=MemberTag.Source.SYSTEM,
                        timeline=False)


def _timeline_many(member_ids: list[int], kind: str, app: OAApp, at: datetime) -> None:
    TimelineEvent.objects.bulk_create([
        TimelineEvent(tenant_id=app.tenant_id, member_id=member_id, kind=kind, actor="system",
                      occurred_at=at, data={"appid": app.appid, "app": app.name})
        for member_id in member_ids], batch_size=2000)


def followers_unsubscribe(*, app: OAApp, openids: list[str], at: datetime) -> int:
    """Mark these followers unsubscribed (the members stay); returns how many were
    following."""
    if not openids:
        return 0
    rows = list(Follower.objects.filter(app=app, openid__in=openids, is_subscribed=True)
                .values_list("pk", "member_id", "member__member_no", "openid"))
    if not rows:
        return 0
    Follower.objects.filter(pk__in=[row[0] for row in rows]).update(
        is_subscribed=False, unsubscribed_at=at, synced_at=at)
    _tag(app, [row[2] for row in rows], add=False)
    _timeline_many([row[1] for row in rows], "oa.unsubscribed", app, at)
    events_record(tenant_id=app.tenant_id, type="follower.unsubscribed", occurred_at=at,
                  payloads=[{"app_id": app.appid, "openid": openid, "member_id": member_id}
                            for _pk, member_id, _no, openid in rows])
    return len(rows)


def _subscribed_events(app: OAApp, *, member_nos: list[int], openids: list[str],
                       at: datetime) -> None:
    """``follower.subscribed`` for the page's new or returning followers, in one COPY."""
    if not member_nos or not is_wanted(tenant_id=app.tenant_id, type="follower.subscribed"):
        return
    rows = Follower.objects.filter(app=app, openid__in=openids,
                                   member__member_no__in=member_nos).values_list(
        "openid", "member_id")
    events_record(tenant_id=app.tenant_id, type="follower.subscribed", occurred_at=at,
                  payloads=[{"app_id": app.appid, "openid": openid, "member_id": member_id}
                            for openid, member_id in rows])


def _unseen_unsubscribe(*, app: OAApp, seen: BitMap, since: datetime) -> int:
    """After a full pass: subscribed followers the list did not hold have left (unless a
    subscribe callback since the sync began says otherwise)."""
    rows = Follower.objects.filter(app=app, is_subscribed=True).exclude(
        subscribed_at__gte=since).values_list("openid", "member__member_no")
    gone = [openid for openid, number in rows.iterator(chunk_size=10_000) if number not in seen]
    return followers_unsubscribe(app=app, openids=gone, at=timezone.now())


# Changes from callbacks


@transaction.atomic
def follower_subscribed(*, app: OAApp, openid: str, at: datetime,
                        scene: str = "") -> tuple[Member, bool]:
    """A subscribe event: the follower's profile is read (for the unionid and scene), the
    member found or created, the follow recorded.  Returns the member and whether it is
    new."""
    actor = Actor(tenant=app.tenant, scopes=frozenset())
    try:
        info = with_backoff(lambda: oa_api(app).users_info([openid]), retries=3)[0]
    except (WeChatApiError, IndexError):
        info = {"openid": openid, "subscribe": 1}  # the event alone is enough to record it
    info = {**info, "subscribe": 1, "openid": openid,
            "subscribe_time": info.get("subscribe_time") or int(at.timestamp())}
    if scene and not info.get("qr_scene_str"):
        info["qr_scene_str"] = scene
    was = Follower.objects.filter(app=app, openid=openid).values_list("is_subscribed",
                                                                      flat=True).first()
    (resolved,) = people_resolve(actor=actor, records=[_record(app, info)],
                                 source_channel=SourceChannel.WECHAT_OA)
    rows_upsert(model=Follower, columns=FOLLOWER_COLUMNS,
                rows=[_follower_row(app, info, resolved.member_id, at)],
                conflict=("tenant_id", "app_id", "openid"), update=FOLLOWER_UPDATES,
                touch=("synced_at",))
    _tag(app, [resolved.member_no], add=True)
    if was is not True:
        _timeline_many([resolved.member_id], "oa.subscribed", app, at)
        event_record(tenant_id=app.tenant_id, type="follower.subscribed", occurred_at=at,
                     data={"app_id": app.appid, "openid": openid,
                           "member_id": resolved.member_id})
    return Member.objects.get(pk=resolved.member_id), resolved.created


def follower_sync_status(*, app: OAApp) -> dict[str, Any]:
    """The latest sync job of the app and how many follow it, for the API and dashboard."""
    job = Job.objects.filter(kind=JOB_KIND, params__app_id=app.pk).order_by("-pk").first()
    followers = Follower.objects.filter(app=app)
    return {"job": job, "followers": followers.filter(is_subscribed=True).count(),
            "unsubscribed": followers.filter(is_subscribed=False).count(),
            "last_sync_at": app.last_sync_at, "last_error": app.last_error}

