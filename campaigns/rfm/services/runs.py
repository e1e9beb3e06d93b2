"""RFM runs, as resumable jobs in two phases.

1. **Score** (one transaction, under a per-tenant lock): the set-based write-back
   (``recompute``), the run row with its settings snapshot, cut points and counts, and its
   history: one roaring bitmap of member numbers per segment (plus "all": the active
   members), derived from the previous run's bitmaps and the members who moved.  The job's
   checkpoint then names the run.
2. **Tags** (one transaction per chunk, each with the checkpoint): each segment's system tag
   comes off the members who left the segment and goes on those who entered it, the
   difference between this run's bitmaps and the previous run's.  A crash resumes at the
   checkpoint; a chunk applied twice changes nothing.

Why bitmaps for the history: a run's members per segment are ~1 MB for 1M members, written
in milliseconds, and the movement between any two runs is 81 intersection counts
(microseconds); a per-run member table would write (and vacuum) a million rows every run.
"""

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from pyroaring import BitMap

from campaigns.rfm import signals
from campaigns.rfm.codes import ALL, NONE, Segment
from campaigns.rfm.models import RfmConfig, RfmRun, RfmRunSegment
from campaigns.rfm.services import recompute
from campaigns.rfm.services.config import rfm_config_get
from campaigns.rfm.services.systemtags import RFM, tag_steps, tags_apply
from members.models import Member
from points.services.rules import system_actor
from scrm.access import Actor
from scrm.api.errors import Conflict
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from scrm.tenancy import require_tenant_id

logger = logging.getLogger(__name__)

JOB_KIND = "rfm_run"
HISTORY_RUNS = 400  # runs whose bitmaps are kept (older runs keep their counts)
STALE_AFTER = timedelta(hours=2)  # a job "running" longer than this died


def advisory_lock(name: str) -> None:
    """A transaction-scoped lock on ``name`` in the tenant in context."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [f"{name}:{require_tenant_id()}"])


def member_ids_of(numbers: BitMap) -> list[int]:
    """The ids of the members with these numbers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM members_member WHERE tenant_id = %s "
                           "AND member_no = ANY(%s::int[])",
                           [require_tenant_id(), list(numbers)])
            return [row[0] for row in cursor.fetchall()]
    found: list[int] = []
    for start in range(0, len(numbers), 500):
        found += Member.objects.filter(member_no__in=list(numbers[start:start + 500])) \
            .values_list("pk", flat=True)
    return found


def _in_progress_error() -> Conflict:
    return Conflict(_("RFM 正在计算中，请稍后再试。"), code="rfm_run_in_progress")


def _live_jobs(exclude: Job | None = None):
    jobs = Job.objects.filter(kind=JOB_KIND, status__in=[Job.Status.PENDING, Job.Status.RUNNING],
                              created_at__gte=timezone.now() - STALE_AFTER)
    return jobs.exclude(pk=exclude.pk) if exclude is not None else jobs


def rfm_run_start(*, actor: Actor, now: datetime | None = None) -> Job:
    """Queue a run now (a job; 409 ``rfm_run_in_progress`` while another is queued or
    running)."""
    from campaigns.rfm.tasks import rfm_run_task

    with transaction.atomic():
        rfm_config_get()
        RfmConfig.objects.select_for_update().get()  # one start at a time
        if _live_jobs().exists():
            raise _in_progress_error()
        job = job_create(actor=actor, kind=JOB_KIND,
                         params={"now": now.isoformat() if now else None})
        transaction.on_commit(lambda: rfm_run_task.delay(actor.tenant.pk, job.pk))
    return job


def rfm_run_now(*, actor: Actor | None = None, now: datetime | None = None) -> RfmRun:
    """Run now, in this process (the schedule, tests, benchmarks); returns the run."""
    actor = actor or system_actor()
    job = job_create(actor=actor, kind=JOB_KIND,
                     params={"now": now.isoformat() if now else None})
    try:
        return rfm_run_execute(job=job)
    except Exception as exc:
        job_finish(job=job, result=job.result, error=str(exc)[:2000])
        raise


def rfm_run_execute(*, job: Job) -> RfmRun:
    """Run (or resume) the job's run: score, then tags."""
    job_start(job=job)
    run = RfmRun.objects.filter(pk=job.checkpoint["run"]).first() \
        if job.checkpoint.get("run") else None
    if run is None:
        _unfinished_finish(job)
        now = parse_datetime(job.params["now"]) if job.params.get("now") else timezone.now()
        run = rfm_score(job=job, now=now)
    if run.status != RfmRun.Status.SUCCEEDED:
        rfm_run_tag(run=run, job=job)
    run.refresh_from_db()
    job_finish(job=job, result={"run": run.pk, "counts": run.counts, "changed": run.changed})
    return run


def _unfinished_finish(job: Job) -> None:
    """Finish the tags of an earlier run whose job died; refuse while one is alive."""
    for run in RfmRun.objects.filter(status=RfmRun.Status.TAGGING).exclude(job=job) \
            .select_related("job").order_by("pk"):
        if run.job is not None and _live_jobs(exclude=job).filter(pk=run.job_id).exists():
            raise _in_progress_error()
        logger.warning("RFM run %s was left unfinished; finishing its tags", run.pk)
        rfm_run_tag(run=run, job=run.job)
        if run.job is not None:
            run.refresh_from_db()
            job_finish(job=run.job, result={"run": run.pk, "counts": run.counts,
                                            "changed": run.changed, "finished_by": job.pk})


def _snapshot(config: RfmConfig) -> dict:
    return {"window_days": config.window_days, "scoring": config.scoring,
            "thresholds": {"r": config.r_thresholds, "f": config.f_thresholds,
                           "m": config.m_thresholds},
            "high": {"r": config.r_high, "f": config.f_high, "m": config.m_high}}


def previous_run(run: RfmRun) -> RfmRun | None:
    """The latest earlier run that still has its bitmaps."""
    return RfmRun.objects.filter(pk__lt=run.pk, segments__segment=ALL).order_by("-pk").first()


def _history(tenant_id: int, run: RfmRun, moves: dict) -> dict[str, BitMap]:
    """segment -> members after this run: the previous run's, less who left, plus who
    entered (read back from the member rows when there is no previous run)."""
    from campaigns.rfm.selectors import run_bitmaps

    previous = previous_run(run)
    if previous is None:
        current = recompute.current_segments(tenant_id)
        return {code: current.get(code, BitMap()) for code in Segment.values}
    before = run_bitmaps(previous)
    left: dict[str, BitMap] = {}
    entered: dict[str, BitMap] = {}
    for (old, new), numbers in moves.items():
        if old:
            left[old] = left.get(old, BitMap()) | numbers
        if new:
            entered[new] = entered.get(new, BitMap()) | numbers
    return {code: (before.get(code, BitMap()) - left.get(code, BitMap()))
            | entered.get(code, BitMap()) for code in Segment.values}


def _history_save(run: RfmRun, bitmaps: dict[str, BitMap]) -> None:
    rows = []
    for segment, bitmap in bitmaps.items():
        bitmap.run_optimize()
        rows.append(RfmRunSegment(tenant_id=run.tenant_id, run=run, segment=segment,
                                  member_count=len(bitmap), bitmap=bitmap.serialize()))
    RfmRunSegment.objects.bulk_create(rows)
    kept = list(RfmRun.objects.order_by("-pk").values_list("pk", flat=True)[:HISTORY_RUNS])
    if len(kept) == HISTORY_RUNS:
        from campaigns.rfm.selectors import run_bitmaps_forget

        RfmRunSegment.objects.filter(run_id__lt=kept[-1]).delete()
        run_bitmaps_forget(tenant_id=run.tenant_id, before=kept[-1])


def rfm_score(*, job: Job | None, now: datetime) -> RfmRun:
    """Phase 1: scores, segments, the run and its history, in one transaction."""
    tenant_id = require_tenant_id()
    started = timezone.now()
    with transaction.atomic():
        advisory_lock("rfm")
        if RfmRun.objects.filter(status=RfmRun.Status.TAGGING).exists():
            raise _in_progress_error()
        config = rfm_config_get()
        since = now - timedelta(days=config.window_days)
        run = RfmRun.objects.create(
            tenant_id=tenant_id, job=job, as_of=now, window_start=since,
            config=_snapshot(config), started_at=started,
            triggered_by=job.created_by if job else "system")
        result = recompute.write_back(tenant_id=tenant_id, config=config, run_id=run.pk,
                                      now=now, since=since)
        timer = recompute.Timer(result.timings)
        bitmaps = _history(tenant_id, run, result.moves)
        timer.lap("history")
        bitmaps[ALL] = result.members
        scored = BitMap.union(*(bitmaps[code] for code in Segment.values))
        _history_save(run, bitmaps)
        timer.lap("history_save")
        run.config["cuts"] = result.cuts.as_dict() if result.cuts else None
        run.counts = {**{code: len(bitmaps[code]) for code in Segment.values},
                      NONE: len(bitmaps[ALL] - scored)}
        run.members, run.scored = len(bitmaps[ALL]), len(scored)
        run.changed = len(BitMap.union(BitMap(), *result.moves.values()))
        run.timings = result.timings
        run.save()
        if job is not None:  # the tag rows to change: one off and one on per move
            total = sum(len(numbers) * (bool(old) + bool(new))
                        for (old, new), numbers in result.moves.items())
            Job.objects.filter(pk=job.pk).update(total=total)
            job_progress(job=job, done=0, checkpoint={"run": run.pk, "step": 0, "after": -1})
    return run


def run_tag_steps(run: RfmRun) -> list:
    """Each segment's tag: off the members who left it since the previous run, on those
    who entered it."""
    from campaigns.rfm.selectors import run_bitmaps

    previous = previous_run(run)
    before = run_bitmaps(previous) if previous else {}
    after = run_bitmaps(run)
    empty = BitMap()
    return tag_steps(
        tenant_id=run.tenant_id, family=RFM,
        entered={code: after.get(code, empty) - before.get(code, empty)
                 for code in Segment.values},
        left={code: before.get(code, empty) - after.get(code, empty)
              for code in Segment.values})


def rfm_run_tag(*, run: RfmRun, job: Job | None) -> None:
    """Phase 2: the segments' system tags, from the job's checkpoint on."""
    clock = recompute.Timer({})
    checkpoint = job.checkpoint if job is not None else {}
    steps = run_tag_steps(run)
    done = job.done if job is not None else 0

    def progress(step: int, after: int, size: int) -> None:
        nonlocal done
        done += size
        if job is not None:
            job_progress(job=job, done=done,
                         checkpoint={"run": run.pk, "step": step, "after": after})

    tags_apply(steps, start=(checkpoint.get("step", 0), checkpoint.get("after", -1)),
               on_chunk=progress)
    clock.lap("tags")
    with transaction.atomic():
        finished = timezone.now()
        timings = {**run.timings, "tags": run.timings.get("tags", 0) + clock.timings["tags"]}
        RfmRun.objects.filter(pk=run.pk).update(
            status=RfmRun.Status.SUCCEEDED, finished_at=finished, timings=timings,
            duration_ms=round((finished - run.started_at).total_seconds() * 1000))
        if job is not None:
            job_progress(job=job, done=done, checkpoint={"run": run.pk, "step": len(steps),
                                                         "after": -1})
        _announce(run, steps)


def _announce(run: RfmRun, steps: list) -> None:
    """``rfm_changed`` once the tags are in; the member ids only when someone listens."""
    if not signals.rfm_changed.has_listeners() or not steps:
        return
    numbers = BitMap.union(BitMap(), *(members for _tag, _action, members in steps))
    member_ids = member_ids_of(numbers)
    tenant_id, run_id = run.tenant_id, run.pk
    transaction.on_commit(lambda: signals.rfm_changed.send(
        sender=RfmRun, tenant_id=tenant_id, run_id=run_id, member_ids=member_ids))
