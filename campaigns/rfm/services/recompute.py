"""The RFM write-back: every member's window aggregates, scores and segment, rewritten
set-based where something changed, and which members moved between segments.

On PostgreSQL, in the run's transaction:
1. ``rfm_stage`` (a temporary table): every active member with one aggregate over the
   window's orders (the scan of ``SELECT member_id, max(paid_at), count(*),
   sum(amount_fen - refunded_fen) ... GROUP BY member_id``; fully refunded orders are left
   out, which changes only the order count, as the member stats count them);
2. the cut points: quintiles (``percentile_disc`` over ``rfm_stage``) or the brand's own;
3. ``rfm_diff``: the members scored and compared with their rows in one hash full join,
   keeping only the new rows, the changed ones and those who left the window;
4. a plain ``INSERT`` of the new rows and one ``UPDATE ... FROM rfm_diff`` of the others.
   (``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM`` over every member
   was measured too: it locks every conflicting row, changed or not, and took 3.9 s for a
   run where nothing changed on the 1M-member tenant, against ~0.9 s for 3 and 4.)
Who moved from which segment to which comes out of ``rfm_diff`` as bitmaps.  Elsewhere
(the SQLite quick start) the same rules run in Python over the ORM.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Count, F, Max, Sum
from pyroaring import BitMap

from campaigns.rfm.codes import SEGMENT_OF, segment_for
from campaigns.rfm.models import MemberRfm, RfmConfig
from campaigns.rfm.services import scoring
from members.models import Member, Order

# Segment by (R high, F high, M high) as a 3-bit number: 4·R + 2·F + M.
SEGMENT_BY_BITS = [SEGMENT_OF[(bool(i & 4), bool(i & 2), bool(i & 1))] for i in range(8)]
# For the run's transaction (measured on the 1M-member tenant, bench/rfm.py):
# - work_mem: the 1M-group hash aggregate and three sorts stay in memory;
# - no JIT: inlining and optimising the aggregate's expressions cost 1.7 s, more than saved;
# - no parallel workers: orders lie in time order, so each worker's partial aggregate holds
#   most of the members and the final step aggregates 1.7M partial groups again; the
#   parallel plan took 7.6-8.7 s of CPU against 4.8-5.3 s serially, for a wall-time gain
#   only on an idle machine, and the daily fan-out runs several tenants side by side.
RUN_SETTINGS = ("SET LOCAL work_mem = '256MB'; SET LOCAL jit = off; "
                "SET LOCAL max_parallel_workers_per_gather = 0")
REANALYZE_AFTER = 100_000  # rows written (a first run, new settings)

STAGE_SQL = """
CREATE TEMPORARY TABLE rfm_stage ON COMMIT DROP AS
SELECT m.id AS member_id, m.member_no, o.last_paid_at, o.frequency, o.monetary,
       floor(extract(epoch FROM %(now)s - o.last_paid_at) / 86400)::int AS recency_days
FROM members_member m
LEFT JOIN (SELECT member_id, max(paid_at) AS last_paid_at, count(*) AS frequency,
                  sum(amount_fen - refunded_fen) AS monetary
           FROM members_order
           WHERE tenant_id = %(tenant)s AND paid_at >= %(since)s AND paid_at <= %(now)s
             AND status <> 'refunded'
           GROUP BY member_id) o ON o.member_id = m.id
WHERE m.tenant_id = %(tenant)s AND m.status = 'active' AND m.profiling_consent
"""

PERCENTILES_SQL = """
SELECT count(*),
       percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY recency_days),
       percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY frequency),
       percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY monetary)
FROM rfm_stage WHERE frequency IS NOT NULL
"""

# Every member with an order in the window, scored against the cut points.
SCORED_CTES = """
graded AS (
    SELECT member_id, member_no, last_paid_at, frequency, monetary,
           5 - ((recency_days > %(r1)s)::int + (recency_days > %(r2)s)::int
                + (recency_days > %(r3)s)::int + (recency_days > %(r4)s)::int) AS r,
           1 + (frequency >= %(f1)s)::int + (frequency >= %(f2)s)::int
             + (frequency >= %(f3)s)::int + (frequency >= %(f4)s)::int AS f,
           1 + (monetary >= %(m1)s)::int + (monetary >= %(m2)s)::int
             + (monetary >= %(m3)s)::int + (monetary >= %(m4)s)::int AS m
    FROM rfm_stage WHERE frequency IS NOT NULL
), scored AS (
    SELECT *, (%(segments)s::text[])[1 + 4 * (r >= %(rh)s)::int + 2 * (f >= %(fh)s)::int
                                     + (m >= %(mh)s)::int] AS segment
    FROM graded
)"""

# Compared with the member rows in one hash full join: the new rows, the changed ones and
# those who left the window.
DIFF_SQL = (  # constant text; every value is a parameter
    "CREATE TEMPORARY TABLE rfm_diff ON COMMIT DROP AS WITH" + SCORED_CTES + """, current AS (
    SELECT member_id, member_no, last_order_at, frequency, monetary_fen, r, f, m, segment
    FROM rfm_memberrfm WHERE tenant_id = %(tenant)s
)
SELECT coalesce(s.member_id, c.member_id) AS member_id,
       coalesce(s.member_no, c.member_no) AS member_no, s.last_paid_at AS last_order_at,
       coalesce(s.frequency, 0) AS frequency, coalesce(s.monetary, 0) AS monetary_fen,
       s.r, s.f, s.m, coalesce(s.segment, '') AS segment,
       coalesce(c.segment, '') AS old_segment, c.member_id IS NULL AS is_new
FROM scored s FULL JOIN current c ON c.member_id = s.member_id
WHERE CASE WHEN s.member_id IS NULL THEN c.segment <> ''
           WHEN c.member_id IS NULL THEN true
           ELSE (c.member_no, c.last_order_at, c.frequency, c.monetary_fen, c.r, c.f, c.m,
                 c.segment)
                IS DISTINCT FROM (s.member_no, s.last_paid_at, s.frequency, s.monetary,
                                  s.r, s.f, s.m, s.segment) END
""")  # noqa: S608

INSERT_SQL = """
INSERT INTO rfm_memberrfm (tenant_id, member_id, member_no, last_order_at, frequency,
                           monetary_fen, r, f, m, segment, previous_segment, segment_run_id,
                           updated_at)
SELECT %(tenant)s, member_id, member_no, last_order_at, frequency, monetary_fen, r, f, m,
       segment, '', %(run)s, %(now)s
FROM rfm_diff WHERE is_new ORDER BY member_id
"""

UPDATE_SQL = """
UPDATE rfm_memberrfm t SET member_no = d.member_no, last_order_at = d.last_order_at,
    frequency = d.frequency, monetary_fen = d.monetary_fen, r = d.r, f = d.f, m = d.m,
    segment = d.segment,
    previous_segment = CASE WHEN d.segment <> d.old_segment THEN d.old_segment
                            ELSE t.previous_segment END,
    segment_run_id = CASE WHEN d.segment <> d.old_segment THEN %(run)s
                          ELSE t.segment_run_id END,
    updated_at = %(now)s
FROM rfm_diff d
WHERE t.tenant_id = %(tenant)s AND t.member_id = d.member_id AND NOT d.is_new
"""

MOVES_SQL = """
SELECT old_segment, segment, array_send(array_agg(member_no)) FROM rfm_diff
WHERE old_segment <> segment GROUP BY 1, 2
"""

CURRENT_SQL = """
SELECT segment, array_send(array_agg(member_no)) FROM rfm_memberrfm
WHERE tenant_id = %s AND segment <> '' GROUP BY 1
"""


@dataclass
class WriteBack:
    cuts: scoring.Cuts | None  # None: nobody had an order in the window
    # (previous segment, new segment) -> the numbers of the members who moved ("": none)
    moves: dict[tuple[str, str], BitMap] = field(default_factory=dict)
    members: BitMap = field(default_factory=BitMap)  # every active member
    timings: dict[str, int] = field(default_factory=dict)


class Timer:
    def __init__(self, timings: dict[str, int]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0) + round((now - self.last) * 1000)
        self.last = now


def decode_numbers(data) -> BitMap:
    """A PostgreSQL int4[] in binary form (``array_send``) as a bitmap."""
    if data is None:
        return BitMap()
    raw = bytes(data)
    if int.from_bytes(raw[:4], "big") == 0:  # no dimensions: empty
        return BitMap()
    values = np.frombuffer(raw, dtype=">i4", offset=20)[1::2]
    return BitMap(values.astype(np.uint32))


def configured_cuts(config: RfmConfig) -> scoring.Cuts:
    return scoring.Cuts(tuple(config.r_thresholds), tuple(config.f_thresholds),
                        tuple(config.m_thresholds))


def highs(config: RfmConfig) -> tuple[int, int, int]:
    return config.r_high, config.f_high, config.m_high


# ---- PostgreSQL ------------------------------------------------------------------------

def _cuts_postgres(cursor, config: RfmConfig) -> scoring.Cuts | None:
    cursor.execute(PERCENTILES_SQL, {"fractions": list(scoring.FRACTIONS)})
    count, days, frequency, monetary = cursor.fetchone()
    if not count:
        return None
    if config.scoring == RfmConfig.Scoring.THRESHOLDS:
        return configured_cuts(config)
    return scoring.cuts_from_percentiles(days, frequency, monetary)


def _cut_params(cuts: scoring.Cuts | None, config: RfmConfig) -> dict:
    cuts = cuts or scoring.Cuts((0,) * 4, (0,) * 4, (0,) * 4)  # nobody to score
    rh, fh, mh = highs(config)
    return {**{f"{dim}{i + 1}": value for dim, values in cuts.as_dict().items()
               for i, value in enumerate(values)},
            "rh": rh, "fh": fh, "mh": mh, "segments": SEGMENT_BY_BITS}


def write_postgres(*, tenant_id: int, config: RfmConfig, run_id: int, now: datetime,
                   since: datetime) -> WriteBack:
    result = WriteBack(cuts=None)
    timer = Timer(result.timings)
    params = {"tenant": tenant_id, "now": now, "since": since, "run": run_id}
    with connection.cursor() as cursor:
        cursor.execute(RUN_SETTINGS)
        cursor.execute("DROP TABLE IF EXISTS rfm_stage, rfm_diff")
        cursor.execute(STAGE_SQL, params)
        cursor.execute("ANALYZE rfm_stage")
        timer.lap("aggregate")
        result.cuts = _cuts_postgres(cursor, config)
        timer.lap("cuts")
        cursor.execute(DIFF_SQL, {**params, **_cut_params(result.cuts, config)})
        cursor.execute("ANALYZE rfm_diff")
        timer.lap("compare")
        cursor.execute(INSERT_SQL, params)
        written = cursor.rowcount
        cursor.execute(UPDATE_SQL, params)
        written += cursor.rowcount
        if written >= REANALYZE_AFTER:  # the next run's joins plan on fresh statistics
            cursor.execute("ANALYZE rfm_memberrfm")
        timer.lap("write")
        cursor.execute(MOVES_SQL)
        for old, new, data in cursor.fetchall():
            result.moves[(old, new)] = decode_numbers(data)
        cursor.execute("SELECT array_send(array_agg(member_no)) FROM rfm_stage")
        result.members = decode_numbers(cursor.fetchone()[0])
        cursor.execute("DROP TABLE rfm_stage, rfm_diff")
        timer.lap("moves")
    return result


def current_postgres(tenant_id: int) -> dict[str, BitMap]:
    """segment -> members, read back from the member rows."""
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_SQL, [tenant_id])
        return {segment: decode_numbers(data) for segment, data in cursor.fetchall()}


# ---- elsewhere: the same rules over the ORM ----------------------------------------------

@dataclass(frozen=True)
class Aggregate:
    member_id: int
    member_no: int
    last_order_at: datetime
    frequency: int
    monetary: int
    days: int


def _aggregates(now: datetime, since: datetime) -> list[Aggregate]:
    rows = (Order.objects.filter(paid_at__gte=since, paid_at__lte=now,
                                 member__status=Member.Status.ACTIVE,
                                 member__profiling_consent=True)
            .exclude(status=Order.Status.REFUNDED)
            .values("member_id", "member__member_no")
            .annotate(last=Max("paid_at"), n=Count("id"),
                      spent=Sum(F("amount_fen") - F("refunded_fen"))))
    return [Aggregate(row["member_id"], row["member__member_no"], row["last"], row["n"],
                      row["spent"] or 0, int((now - row["last"]).total_seconds() // 86400))
            for row in rows]


def _cuts_portable(config: RfmConfig, rows: list[Aggregate]) -> scoring.Cuts | None:
    if not rows:
        return None
    if config.scoring == RfmConfig.Scoring.THRESHOLDS:
        return configured_cuts(config)
    return scoring.quintile_cuts(days=sorted(r.days for r in rows),
                                 frequency=sorted(r.frequency for r in rows),
                                 monetary=sorted(r.monetary for r in rows))


def _scored(row: Aggregate, cuts: scoring.Cuts, config: RfmConfig) -> dict:
    r = scoring.score_r(row.days, cuts.r)
    f = scoring.score_up(row.frequency, cuts.f)
    m = scoring.score_up(row.monetary, cuts.m)
    return {"member_no": row.member_no, "last_order_at": row.last_order_at,
            "frequency": row.frequency, "monetary_fen": row.monetary, "r": r, "f": f, "m": m,
            "segment": segment_for(r, f, m, highs=highs(config))}


NONE_VALUES = {"last_order_at": None, "frequency": 0, "monetary_fen": 0, "r": None,
               "f": None, "m": None, "segment": ""}


def _apply(existing: MemberRfm | None, values: dict, *, tenant_id: int, member_id: int,
           run_id: int, now: datetime, moves: dict) -> MemberRfm | None:
    """The row to write for one member (None: unchanged), noting a change of segment."""
    if existing is None:
        existing = MemberRfm(tenant_id=tenant_id, member_id=member_id, previous_segment="")
        old = ""
    elif all(getattr(existing, name) == value for name, value in values.items()):
        return None
    else:
        old = existing.segment
    if old != values["segment"]:
        existing.previous_segment, existing.segment_run_id = old, run_id
        moves.setdefault((old, values["segment"]), BitMap()).add(values["member_no"])
    for name, value in values.items():
        setattr(existing, name, value)
    existing.updated_at = now
    return existing


def write_portable(*, tenant_id: int, config: RfmConfig, run_id: int, now: datetime,
                   since: datetime) -> WriteBack:
    timings: dict[str, int] = {}
    timer = Timer(timings)
    rows = _aggregates(now, since)
    timer.lap("aggregate")
    result = WriteBack(cuts=_cuts_portable(config, rows), timings=timings)
    timer.lap("cuts")
    existing = {row.member_id: row for row in MemberRfm.objects.all()}
    changed: list[MemberRfm] = []
    seen = set()
    for row in rows:
        seen.add(row.member_id)
        values = _scored(row, result.cuts, config)
        written = _apply(existing.get(row.member_id), values, tenant_id=tenant_id,
                         member_id=row.member_id, run_id=run_id, now=now, moves=result.moves)
        if written is not None:
            changed.append(written)
    for member_id, row in existing.items():
        if member_id not in seen and row.segment:
            changed.append(_apply(row, {**NONE_VALUES, "member_no": row.member_no},
                                  tenant_id=tenant_id, member_id=member_id, run_id=run_id,
                                  now=now, moves=result.moves))
    result.members = BitMap(Member.objects.filter(status=Member.Status.ACTIVE)
                            .values_list("member_no", flat=True))
    timer.lap("compare")
    MemberRfm.objects.bulk_create([row for row in changed if row.pk is None], batch_size=1000)
    MemberRfm.objects.bulk_update([row for row in changed if row.pk is not None],
                                  ["member_no", "last_order_at", "frequency", "monetary_fen", "r",
                                   "f", "m", "segment", "previous_segment", "segment_run",
                                   "updated_at"],
                                  batch_size=1000)
    timer.lap("write")
    return result


def current_portable() -> dict[str, BitMap]:
    current: dict[str, BitMap] = {}
    for segment, member_no in MemberRfm.objects.exclude(segment="").values_list(
            "segment", "member_no"):
        current.setdefault(segment, BitMap()).add(member_no)
    return current


def write_back(**kwargs) -> WriteBack:
    if connection.vendor == "postgresql":
        return write_postgres(**kwargs)
    return write_portable(**kwargs)


def current_segments(tenant_id: int) -> dict[str, BitMap]:
    return current_postgres(tenant_id) if connection.vendor == "postgresql" \
        else current_portable()
