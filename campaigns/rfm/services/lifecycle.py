"""Lifecycle stages (潜客 → 新客 → 复购 → 忠诚, 沉睡, 流失), evaluated set-based: every
member on the schedule (``lifecycle_pass``), or the members of new orders and refunds
(``lifecycle_evaluate``).

A member's stage, first rule that holds (``now`` is when the evaluation stands):
1. prospect: no order (that counts: fully refunded ones do not);
2. lost: no order in the last ``lost_days`` days;
3. dormant: no order in the last ``dormant_days`` days;
4. loyal: at least ``loyal_orders`` orders, or (when set) ``loyal_spend_fen`` spent net of
   refunds, in the last ``loyal_window_days`` days;
5. new: exactly one order, or the first one within the last ``new_days`` days;
6. repeat: otherwise (two or more orders).

Counts, first and last order come from the member stats (kept in each order's own
transaction); the loyalty window from the orders.  One transaction per evaluation: the
stages, a timeline event per change ("lifecycle.changed", from/to), the stage system tags
of the members who changed, and after commit one ``lifecycle_changed``.  A tenant's first
pass only sets everyone's stage: it writes no timeline events and sends no signal.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone
from pyroaring import BitMap

from campaigns.rfm import signals
from campaigns.rfm.codes import STAGE_NAMES, Stage
from campaigns.rfm.models import LifecycleConfig, MemberLifecycle, MemberRfm, RfmRun
from campaigns.rfm.services.config import lifecycle_config_get
from campaigns.rfm.services.recompute import REANALYZE_AFTER, RUN_SETTINGS, decode_numbers
from campaigns.rfm.services.runs import advisory_lock
from campaigns.rfm.services.systemtags import LIFECYCLE, tag_steps, tags_apply
from members.models import Member, MemberStats, Order, TimelineEvent
from scrm.tenancy import require_tenant_id

EVENT = "lifecycle.changed"

# The loyalty window's orders and net spend per member: from the orders, or, right after
# an RFM run over the same window at the same moment, from its member rows (the same
# figures: counted orders and spend net of refunds), which saves a second scan of the orders.
WINDOW_FROM_ORDERS = """
    SELECT member_id, count(*) AS orders, sum(amount_fen - refunded_fen) AS spent
    FROM members_order
    WHERE tenant_id = %(tenant)s AND paid_at >= %(loyal_since)s AND paid_at <= %(now)s
      AND status <> 'refunded' {orders_scope}
    GROUP BY member_id"""
WINDOW_FROM_RFM = """
    SELECT member_id, frequency AS orders, monetary_fen AS spent FROM rfm_memberrfm
    WHERE tenant_id = %(tenant)s AND segment <> ''"""

# Stages, compared with the stored ones: only the new and the changed rows are written
# (an upsert over everyone would lock every row, changed or not).
EVALUATE_SQL = """
WITH window_orders AS ({window}
), staged AS (
    SELECT m.id AS member_id, m.member_no, CASE
        WHEN coalesce(s.order_count, 0) = 0 THEN 'prospect'
        WHEN s.last_order_at < %(lost_before)s THEN 'lost'
        WHEN s.last_order_at < %(dormant_before)s THEN 'dormant'
        WHEN w.orders >= %(loyal_orders)s
             OR (%(loyal_spend)s > 0 AND w.spent >= %(loyal_spend)s) THEN 'loyal'
        WHEN s.order_count = 1 OR s.first_order_at >= %(new_since)s THEN 'new'
        ELSE 'repeat' END AS stage
    FROM members_member m
    LEFT JOIN members_memberstats s ON s.tenant_id = m.tenant_id AND s.member_id = m.id
    LEFT JOIN window_orders w ON w.member_id = m.id
    WHERE m.tenant_id = %(tenant)s AND m.status = 'active' AND m.profiling_consent
          {members_scope}
), changed AS (
    SELECT s.member_id, s.member_no, s.stage, coalesce(c.stage, '') AS previous_stage,
           c.member_id IS NULL AS is_new
    FROM staged s LEFT JOIN rfm_memberlifecycle c
         ON c.tenant_id = %(tenant)s AND c.member_id = s.member_id
    WHERE c.stage IS DISTINCT FROM s.stage
), inserted AS (
    INSERT INTO rfm_memberlifecycle (tenant_id, member_id, member_no, stage, previous_stage,
                                     changed_at)
    SELECT %(tenant)s, member_id, member_no, stage, '', %(now)s FROM changed WHERE is_new
), updated AS (
    UPDATE rfm_memberlifecycle t SET member_no = c.member_no, stage = c.stage,
        previous_stage = c.previous_stage, changed_at = %(now)s
    FROM changed c
    WHERE t.tenant_id = %(tenant)s AND t.member_id = c.member_id AND NOT c.is_new
), events AS (
    INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at, data, actor)
    SELECT %(tenant)s, member_id, %(event)s, %(now)s,
           jsonb_build_object('from', NULLIF(previous_stage, ''), 'to', stage,
                              'from_name', %(names)s::jsonb ->> previous_stage,
                              'to_name', %(names)s::jsonb ->> stage), 'system'
    FROM changed WHERE %(events)s
)
SELECT previous_stage, stage, array_send(array_agg(member_no)),
       CASE WHEN %(ids)s THEN array_send(array_agg(member_id)) END
FROM changed GROUP BY 1, 2
"""

BIGINT_ITEM = np.dtype([("length", ">i4"), ("value", ">i8")])


@dataclass
class Evaluation:
    # (previous stage, stage) -> member numbers ("" previous: the member had no stage yet)
    moves: dict[tuple[str, str], BitMap] = field(default_factory=dict)
    changes: list[tuple[int, str, str]] = field(default_factory=list)  # when announced

    @property
    def changed(self) -> int:
        return sum(len(numbers) for numbers in self.moves.values())


@dataclass(frozen=True)
class Bounds:
    """The instants the rules compare with."""

    now: datetime
    lost_before: datetime
    dormant_before: datetime
    loyal_since: datetime
    new_since: datetime

    @classmethod
    def of(cls, config: LifecycleConfig, now: datetime) -> "Bounds":
        return cls(now, now - timedelta(days=config.lost_days),
                   now - timedelta(days=config.dormant_days),
                   now - timedelta(days=config.loyal_window_days),
                   now - timedelta(days=config.new_days))


def stage_for(*, config: LifecycleConfig, bounds: Bounds, stats: MemberStats | None,
              window_orders: int, window_spent: int) -> str:
    """The rules above for one member (the SQL's twin)."""
    if stats is None or stats.order_count == 0:
        return Stage.PROSPECT
    if stats.last_order_at < bounds.lost_before:
        return Stage.LOST
    if stats.last_order_at < bounds.dormant_before:
        return Stage.DORMANT
    if window_orders >= config.loyal_orders or (
            config.loyal_spend_fen > 0 and window_spent >= config.loyal_spend_fen):
        return Stage.LOYAL
    if stats.order_count == 1 or stats.first_order_at >= bounds.new_since:
        return Stage.NEW
    return Stage.REPEAT


def _decode_ids(data) -> list[int]:
    raw = bytes(data) if data is not None else b""
    if len(raw) < 20 or int.from_bytes(raw[:4], "big") == 0:
        return []
    return np.frombuffer(raw, dtype=BIGINT_ITEM, offset=20)["value"].tolist()


def _evaluate_postgres(*, config: LifecycleConfig, bounds: Bounds, member_ids: list[int] | None,
                       events: bool, announce: bool, window_from_rfm: bool) -> Evaluation:
    scoped = member_ids is not None
    window = WINDOW_FROM_RFM if window_from_rfm else WINDOW_FROM_ORDERS.format(
        orders_scope="AND member_id = ANY(%(members)s::bigint[])" if scoped else "")
    sql = EVALUATE_SQL.format(
        window=window, members_scope="AND m.id = ANY(%(members)s::bigint[])" if scoped else "")
    params = {"tenant": require_tenant_id(), "now": bounds.now,
              "lost_before": bounds.lost_before, "dormant_before": bounds.dormant_before,
              "loyal_since": bounds.loyal_since, "new_since": bounds.new_since,
              "loyal_orders": config.loyal_orders, "loyal_spend": config.loyal_spend_fen,
              "members": member_ids or [], "event": EVENT, "events": events, "ids": announce,
              "names": json.dumps(STAGE_NAMES, ensure_ascii=False)}
    result = Evaluation()
    with connection.cursor() as cursor:
        if not scoped:
            cursor.execute(RUN_SETTINGS)
        cursor.execute(sql, params)
        for previous, stage, numbers, ids in cursor.fetchall():
            result.moves[(previous, stage)] = decode_numbers(numbers)
            result.changes += [(pk, previous, stage) for pk in _decode_ids(ids)]
        if result.changed >= REANALYZE_AFTER:
            cursor.execute("ANALYZE rfm_memberlifecycle")
    return result


def _window_totals(bounds: Bounds, member_ids: list[int] | None,
                   window_from_rfm: bool) -> dict[int, tuple[int, int]]:
    if window_from_rfm:
        return {member_id: (orders, spent) for member_id, orders, spent in
                MemberRfm.objects.exclude(segment="").values_list(
                    "member_id", "frequency", "monetary_fen")}
    rows = Order.objects.filter(paid_at__gte=bounds.loyal_since, paid_at__lte=bounds.now) \
        .exclude(status=Order.Status.REFUNDED)
    if member_ids is not None:
        rows = rows.filter(member_id__in=member_ids)
    return {row["member_id"]: (row["n"], row["spent"] or 0) for row in rows.values(
        "member_id").annotate(n=Count("id"), spent=Sum(F("amount_fen") - F("refunded_fen")))}


def _evaluate_portable(*, config: LifecycleConfig, bounds: Bounds,
                       member_ids: list[int] | None, events: bool, announce: bool,
                       window_from_rfm: bool) -> Evaluation:
    members = Member.objects.filter(status=Member.Status.ACTIVE, profiling_consent=True)
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    members = list(members.values_list("pk", "member_no"))
    ids = [pk for pk, _no in members]
    stats = {row.member_id: row for row in MemberStats.objects.filter(member_id__in=ids)}
    totals = _window_totals(bounds, member_ids, window_from_rfm)
    current = {row.member_id: row for row in MemberLifecycle.objects.filter(member_id__in=ids)}
    result, timeline = Evaluation(), []
    for pk, number in members:
        orders, spent = totals.get(pk, (0, 0))
        stage = stage_for(config=config, bounds=bounds, stats=stats.get(pk),
                          window_orders=orders, window_spent=spent)
        row = current.get(pk)
        if row is not None and row.stage == stage:
            continue
        previous = row.stage if row is not None else ""
        MemberLifecycle.objects.update_or_create(
            member_id=pk, defaults={"tenant_id": require_tenant_id(), "member_no": number,
                                    "stage": stage, "previous_stage": previous,
                                    "changed_at": bounds.now})
        result.moves.setdefault((previous, stage), BitMap()).add(number)
        if announce:
            result.changes.append((pk, previous, stage))
        if events:
            timeline.append(TimelineEvent(
                tenant_id=require_tenant_id(), member_id=pk, kind=EVENT,
                occurred_at=bounds.now, actor="system",
                data={"from": previous or None, "to": stage,
                      "from_name": STAGE_NAMES.get(previous), "to_name": STAGE_NAMES[stage]}))
    TimelineEvent.objects.bulk_create(timeline, batch_size=1000)
    return result


def _evaluate(*, member_ids: list[int] | None, now: datetime | None, full: bool,
              rfm_run: RfmRun | None = None) -> Evaluation:
    now = now or timezone.now()
    with transaction.atomic():
        advisory_lock("lifecycle")
        config = lifecycle_config_get()
        backfill = full and config.last_pass_at is None
        announce = not backfill and signals.lifecycle_changed.has_listeners()
        evaluate = _evaluate_postgres if connection.vendor == "postgresql" \
            else _evaluate_portable
        result = evaluate(config=config, bounds=Bounds.of(config, now), member_ids=member_ids,
                          events=not backfill, announce=announce,
                          window_from_rfm=_window_matches(rfm_run, config, now))
        _tags(result.moves)
        if full:
            LifecycleConfig.objects.filter(pk=config.pk).update(last_pass_at=now)
        if announce and result.changes:
            tenant_id, changes = require_tenant_id(), result.changes
            transaction.on_commit(lambda: signals.lifecycle_changed.send(
                sender=MemberLifecycle, tenant_id=tenant_id, changes=changes))
    return result


def _tags(moves: dict[tuple[str, str], BitMap]) -> None:
    left: dict[str, BitMap] = {}
    entered: dict[str, BitMap] = {}
    for (previous, stage), numbers in moves.items():
        if previous:
            left[previous] = left.get(previous, BitMap()) | numbers
        entered[stage] = entered.get(stage, BitMap()) | numbers
    if entered:
        tags_apply(tag_steps(tenant_id=require_tenant_id(), family=LIFECYCLE,
                             entered=entered, left=left))


def _window_matches(run: RfmRun | None, config: LifecycleConfig, now: datetime) -> bool:
    """Whether ``run``'s member rows hold the loyalty window's figures as of ``now``: it is
    the latest run, as of ``now``, over a window as long."""
    if run is None or run.as_of != now or run.config.get("window_days") != \
            config.loyal_window_days:
        return False
    return RfmRun.objects.order_by("-pk").values_list("pk", flat=True).first() == run.pk


def lifecycle_pass(*, now: datetime | None = None, rfm_run: RfmRun | None = None
                   ) -> Evaluation:
    """Every active member of the tenant in context (the scheduled pass).  ``rfm_run``: the
    run that just scored the tenant as of ``now``, whose figures the loyalty rule may use."""
    return _evaluate(member_ids=None, now=now, full=True, rfm_run=rfm_run)


def lifecycle_evaluate(*, member_ids: list[int], now: datetime | None = None) -> Evaluation:
    """These members (after their orders or refunds)."""
    if not member_ids:
        return Evaluation()
    return _evaluate(member_ids=sorted(set(member_ids)), now=now, full=False)


def lifecycle_forget(*, member_id: int) -> None:
    """A merged-away member has no stage of its own any more."""
    MemberLifecycle.objects.filter(member_id=member_id).delete()
