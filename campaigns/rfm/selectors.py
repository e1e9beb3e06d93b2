"""Reads: a run's segment bitmaps (cached: a run's history never changes), the movement
between two runs, one member's RFM and lifecycle with their history, the lifecycle funnel."""

from collections import OrderedDict

from django.db.models import Count
from django.utils.translation import gettext as _
from pyroaring import BitMap

from campaigns.rfm.codes import ALL, NONE, SEGMENT_NAMES, STAGE_NAMES, Segment, Stage
from campaigns.rfm.models import MemberLifecycle, MemberRfm, RfmRun, RfmRunSegment
from members.models import Member
from scrm.api.errors import Conflict

CACHED_RUNS = 64
HISTORY_RUNS = 10
ROWS = [*Segment.values, NONE]  # the movement matrix's rows and columns

_bitmaps: OrderedDict[tuple, dict[str, BitMap]] = OrderedDict()


def run_bitmaps(run: RfmRun) -> dict[str, BitMap]:
    """segment (and "all") -> member numbers of ``run``; {} when its history was pruned."""
    key = (run.tenant_id, run.pk, run.started_at)
    if key not in _bitmaps:
        _bitmaps[key] = {segment: BitMap.deserialize(bytes(data)) for segment, data in
                         RfmRunSegment.objects.filter(run=run).values_list("segment", "bitmap")}
        while len(_bitmaps) > CACHED_RUNS:
            _bitmaps.popitem(last=False)
    _bitmaps.move_to_end(key)
    return _bitmaps[key]


def run_bitmaps_forget(*, tenant_id: int, before: int) -> None:
    """Drop this process's copies of the tenant's runs before ``before`` (their history was
    pruned; other processes let theirs age out)."""
    for key in [key for key in _bitmaps if key[0] == tenant_id and key[1] < before]:
        del _bitmaps[key]


def _segments(run: RfmRun) -> tuple[dict[str, BitMap], BitMap]:
    """segment -> members, and every active member, of ``run``."""
    bitmaps = run_bitmaps(run)
    if ALL not in bitmaps:
        raise Conflict(_("RFM 计算 #%(id)s 的历史已清理。") % {"id": run.pk},
                       code="rfm_history_pruned")
    return {code: bitmaps.get(code, BitMap()) for code in Segment.values}, bitmaps[ALL]


def movement_cells(*, run_from: RfmRun, run_to: RfmRun) -> tuple[dict, dict]:
    """segment or "none" -> members, at each run; "none" covers the members of either run
    without a segment in that one (no order in its window, or not a member yet)."""
    before, members_before = _segments(run_from)
    after, members_after = _segments(run_to)
    members = members_before | members_after
    before[NONE] = members - BitMap.union(*before.values())
    after[NONE] = members - BitMap.union(*after.values())
    return before, after


def movement(*, run_from: RfmRun, run_to: RfmRun) -> dict:
    """Who moved from which segment to which: counts for every (from, to) pair of the eight
    segments and "none"."""
    before, after = movement_cells(run_from=run_from, run_to=run_to)
    matrix = {source: {target: before[source].intersection_cardinality(after[target])
                       for target in ROWS} for source in ROWS}
    return {"from_run": run_from, "to_run": run_to, "segments": ROWS, "matrix": matrix,
            "from_counts": {code: len(before[code]) for code in ROWS},
            "to_counts": {code: len(after[code]) for code in ROWS},
            "moved": sum(matrix[s][t] for s in ROWS for t in ROWS if s != t)}


def movement_members(*, run_from: RfmRun, run_to: RfmRun, source: str, target: str) -> BitMap:
    """The members (numbers) of one cell of the movement matrix."""
    before, after = movement_cells(run_from=run_from, run_to=run_to)
    return before[source] & after[target]


def member_history(*, member: Member, runs: int = HISTORY_RUNS) -> list[dict]:
    """The member's segment (None: no order in that run's window) in each of the latest
    ``runs`` runs they were a member at, newest first."""
    history = []
    for run in RfmRun.objects.filter(status=RfmRun.Status.SUCCEEDED).order_by("-pk")[:runs]:
        bitmaps = run_bitmaps(run)
        if ALL not in bitmaps:
            break
        if member.member_no not in bitmaps[ALL]:  # not a member (or not active) then
            continue
        segment = next((code for code in Segment.values
                        if member.member_no in bitmaps.get(code, ())), None)
        history.append({"run": run.pk, "as_of": run.as_of, "segment": segment,
                        "segment_name": SEGMENT_NAMES.get(segment or "")})
    return history


def member_rfm(*, member: Member, runs: int = HISTORY_RUNS) -> dict:
    """The member's scores and segment, lifecycle stage, and segment history."""
    row = MemberRfm.objects.filter(member_id=member.pk).select_related("segment_run").first()
    stage = MemberLifecycle.objects.filter(member_id=member.pk).first()
    rfm = None
    if row is not None and row.segment:
        as_of = row.segment_run.as_of if row.segment_run else None
        rfm = {"segment": row.segment, "segment_name": SEGMENT_NAMES[row.segment],
               "r": row.r, "f": row.f, "m": row.m, "last_order_at": row.last_order_at,
               "frequency": row.frequency, "monetary_fen": row.monetary_fen,
               "previous_segment": row.previous_segment or None, "segment_since": as_of,
               "updated_at": row.updated_at}
    lifecycle = None
    if stage is not None:
        lifecycle = {"stage": stage.stage, "stage_name": STAGE_NAMES[stage.stage],
                     "previous_stage": stage.previous_stage or None,
                     "changed_at": stage.changed_at}
    return {"member": member.pk, "rfm": rfm, "lifecycle": lifecycle,
            "history": member_history(member=member, runs=runs)}


def lifecycle_funnel() -> dict:
    """Members per stage, in funnel order; ``unevaluated``: active members the schedule has
    not reached yet (joined since the last pass, no order yet)."""
    counts = dict(MemberLifecycle.objects.values_list("stage").annotate(n=Count("pk"))
                  .values_list("stage", "n"))
    evaluated = sum(counts.values())
    active = Member.objects.filter(status=Member.Status.ACTIVE).count()
    return {"stages": [{"stage": code, "name": STAGE_NAMES[code], "count": counts.get(code, 0),
                        "share": round(counts.get(code, 0) / evaluated, 4) if evaluated else 0}
                       for code in Stage.values],
            "evaluated": evaluated, "unevaluated": max(active - evaluated, 0)}
