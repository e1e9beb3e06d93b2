"""RFM runs: quintile and threshold scores on data whose answer is known, the window's
edges, refunds, history and movement between runs, system tags and the audience leaf."""

from datetime import timedelta

import pytest
from django.db import connection
from pyroaring import BitMap

from campaigns.rfm import selectors, signals
from campaigns.rfm.models import MemberRfm, RfmConfig, RfmRun, RfmRunSegment
from campaigns.rfm.services.config import rfm_config_update
from campaigns.rfm.services.runs import rfm_run_now
from members.models import TimelineEvent
from scrm.api.errors import Conflict
from scrm.models import Job
from scrm.tenancy import tenant_scope
from tags.audience.expressions import ExpressionError, Parser
from tags.audience.index import audience_count
from tags.models import MemberTag, Tag
from tests.rfm.conftest import DAY, KNOWN_SCORES, NOW, add_order, add_orders, new_member, refund


def run(actor, now=NOW) -> RfmRun:
    with tenant_scope(actor.tenant):
        return rfm_run_now(actor=actor, now=now)


def scores(tenant, members: dict) -> dict:
    with tenant_scope(tenant):
        rows = {row.member_id: row for row in MemberRfm.objects.all()}
    return {name: (rows[m.pk].r, rows[m.pk].f, rows[m.pk].m, rows[m.pk].segment)
            if m.pk in rows and rows[m.pk].segment else None for name, m in members.items()}


def segment_tags(tenant, member) -> list[str]:
    with tenant_scope(tenant):
        return sorted(MemberTag.objects.filter(member=member, tag__external_source="rfm")
                      .values_list("tag__external_id", flat=True))


def test_quintiles_give_the_known_scores_and_all_eight_segments(actor, tenant, known):
    result = run(actor)
    assert scores(tenant, known) == KNOWN_SCORES
    assert result.status == RfmRun.Status.SUCCEEDED
    assert result.config["cuts"] == {"r": [1, 3, 5, 7], "f": [3, 5, 7, 9],
                                     "m": [200_001, 400_001, 600_001, 800_001]}
    assert result.counts == {
        "important_value": 3, "important_develop": 1, "important_keep": 1,
        "important_retain": 1, "general_value": 1, "general_develop": 1, "general_keep": 1,
        "general_retain": 1, "none": 0}
    assert (result.members, result.scored, result.changed) == (10, 10, 10)
    assert result.window_start == NOW - 365 * DAY
    assert result.duration_ms is not None
    assert result.finished_at is not None
    with tenant_scope(tenant):
        a = MemberRfm.objects.get(member=known["A"])
        assert (a.frequency, a.monetary_fen, a.previous_segment) == (10, 1_000_000, "")
        assert a.last_order_at == NOW - timedelta(hours=2)
        # no timeline events for RFM: segment changes live in the run history
        assert not TimelineEvent.objects.filter(kind__startswith="rfm").exists()
        job = Job.objects.get(kind="rfm_run")
        assert (job.status, job.result["run"]) == (Job.Status.SUCCEEDED, result.pk)


def test_ties_share_a_score(actor, tenant):
    members = {f"m{i}": new_member(actor) for i in range(5)}
    for i, member in enumerate(members.values()):  # one order each, same day, same amount
        add_order(member, at=NOW - DAY * 10 - timedelta(hours=i), amount_fen=5000)
    result = run(actor)
    # every cut point falls on the shared value: nobody exceeds one
    assert result.config["cuts"] == {"r": [10] * 4, "f": [2] * 4, "m": [5001] * 4}
    assert set(scores(tenant, members).values()) == {(5, 1, 1, "general_develop")}


def test_a_run_rewrites_only_the_rows_that_changed(actor, tenant, known, cut_points):
    first = run(actor)
    add_order(known["D"], at=NOW, amount_fen=1)  # D: (4, 1, 1) -> (5, 2, 2), same segment
    second = run(actor, now=NOW + timedelta(minutes=1))
    assert second.changed == 0
    with tenant_scope(tenant):
        rows = {row.member_id: row for row in MemberRfm.objects.all()}
    assert {m.pk for m in known.values() if rows[m.pk].updated_at != NOW} == {known["D"].pk}
    d = rows[known["D"].pk]
    assert (d.r, d.f, d.m, d.segment, d.frequency) == (5, 2, 2, "general_develop", 3)
    assert (d.updated_at, d.segment_run_id) == (NOW + timedelta(minutes=1), first.pk)
    assert {row.segment_run_id for row in rows.values()} == {first.pk}


def test_thresholds_mode_scores_against_the_brands_cut_points(actor, tenant, known):
    with tenant_scope(tenant):
        rfm_config_update(actor=actor, changes={
            "scoring": "thresholds", "r_thresholds": [0, 2, 4, 6],
            "f_thresholds": [2, 3, 6, 10], "m_thresholds": [300_000, 500_000, 700_000, 900_000],
            "r_high": 4, "f_high": 3, "m_high": 4})
    result = run(actor)
    assert result.config["cuts"] == {"r": [0, 2, 4, 6], "f": [2, 3, 6, 10],
                                     "m": [300_000, 500_000, 700_000, 900_000]}
    assert result.config["scoring"] == "thresholds"
    assert scores(tenant, known) == {
        "A": (5, 5, 5, "important_value"), "B": (4, 1, 5, "important_develop"),
        "C": (4, 4, 1, "general_value"), "D": (3, 2, 1, "general_retain"),
        "E": (3, 3, 3, "general_keep"), "F": (2, 4, 3, "general_keep"),
        "G": (2, 4, 4, "important_keep"), "H": (1, 3, 4, "important_keep"),
        "I": (1, 4, 2, "general_keep"), "J": (1, 3, 2, "general_keep")}


def test_window_edges(actor, tenant):
    with tenant_scope(tenant):
        rfm_config_update(actor=actor, changes={"window_days": 30})
    on_edge, before_edge, future, both = (new_member(actor) for _ in range(4))
    add_order(on_edge, at=NOW - 30 * DAY, amount_fen=1000)
    add_order(before_edge, at=NOW - 30 * DAY - timedelta(seconds=1), amount_fen=1000)
    add_order(future, at=NOW + timedelta(seconds=1), amount_fen=1000)
    add_order(both, at=NOW, amount_fen=1000)
    add_order(both, at=NOW - 31 * DAY, amount_fen=9000)
    result = run(actor)
    with tenant_scope(tenant):
        rows = {row.member_id: row for row in MemberRfm.objects.all()}
    assert set(rows) == {on_edge.pk, both.pk}
    assert (rows[on_edge.pk].frequency, rows[on_edge.pk].last_order_at) == (1, NOW - 30 * DAY)
    assert (rows[both.pk].frequency, rows[both.pk].monetary_fen) == (1, 1000)
    assert (result.scored, result.counts["none"]) == (2, 2)


def test_refunds_reduce_m_and_full_refunds_do_not_count(actor, tenant):
    partly, fully, only_refunded = (new_member(actor) for _ in range(3))
    add_order(partly, at=NOW - DAY, amount_fen=10_000)
    order = add_order(partly, at=NOW - 2 * DAY, amount_fen=20_000)
    refund(actor, order, 5_000)
    add_order(fully, at=NOW - 3 * DAY, amount_fen=7_000)
    order = add_order(fully, at=NOW - DAY, amount_fen=50_000)
    refund(actor, order, 50_000)
    order = add_order(only_refunded, at=NOW - DAY, amount_fen=9_000)
    refund(actor, order, 9_000)
    run(actor)
    with tenant_scope(tenant):
        rows = {row.member_id: (row.frequency, row.monetary_fen, row.last_order_at)
                for row in MemberRfm.objects.all()}
    assert rows == {partly.pk: (2, 25_000, NOW - DAY),
                    fully.pk: (1, 7_000, NOW - 3 * DAY)}


def _second_run_changes(actor, known) -> dict:
    """J buys six times today (general_retain -> important_value), I's orders are all
    refunded (general_keep -> none), K is new with one order (none -> general_develop), L
    has never bought (none both times)."""
    add_orders(known["J"], count=6, total_fen=600_000, last_at=NOW - timedelta(hours=1),
               spacing=timedelta(minutes=1))
    with tenant_scope(actor.tenant):
        for order in known["I"].orders.all():
            refund(actor, order, order.amount_fen)
    k = new_member(actor, "K")
    add_order(k, at=NOW - timedelta(hours=1), amount_fen=100_000)
    return {"K": k, "L": new_member(actor, "L")}


@pytest.fixture
def cut_points(actor, tenant):
    """The first run's quintile cut points as thresholds: both runs score alike."""
    with tenant_scope(tenant):
        rfm_config_update(actor=actor, changes={
            "scoring": "thresholds", "r_thresholds": [1, 3, 5, 7],
            "f_thresholds": [3, 5, 7, 9], "m_thresholds": [200_001, 400_001, 600_001, 800_001]})


def test_a_second_run_and_the_movement_matrix(actor, tenant, known, cut_points):
    first = run(actor)
    added = _second_run_changes(actor, known)
    second = run(actor)
    assert second.changed == 3
    assert scores(tenant, {"J": known["J"], "I": known["I"], **added}) == {
        "J": (5, 5, 5, "important_value"), "I": None, "K": (5, 1, 1, "general_develop"),
        "L": None}
    with tenant_scope(tenant):
        j = MemberRfm.objects.get(member=known["J"])
        assert (j.previous_segment, j.segment_run_id) == ("general_retain", second.pk)
        assert MemberRfm.objects.get(member=known["I"]).previous_segment == "general_keep"
        moved = selectors.movement(run_from=first, run_to=second)
        cell = selectors.movement_members(run_from=first, run_to=second,
                                          source="general_retain", target="important_value")
    matrix = moved["matrix"]
    off_diagonal = {(s, t): n for s, row in matrix.items() for t, n in row.items()
                    if s != t and n}
    assert off_diagonal == {("general_retain", "important_value"): 1,
                            ("general_keep", "none"): 1, ("none", "general_develop"): 1}
    assert matrix["important_value"]["important_value"] == 3
    assert matrix["none"]["none"] == 1  # L
    assert moved["moved"] == 3
    assert (moved["from_counts"]["none"], moved["to_counts"]["none"]) == (2, 2)
    assert cell == BitMap([known["J"].member_no])


def test_history_and_tags_follow_the_segments(actor, tenant, known, cut_points):
    first = run(actor)
    assert segment_tags(tenant, known["J"]) == ["general_retain"]
    added = _second_run_changes(actor, known)
    second = run(actor)
    assert segment_tags(tenant, known["J"]) == ["important_value"]
    assert segment_tags(tenant, known["I"]) == []
    assert segment_tags(tenant, added["K"]) == ["general_develop"]
    with tenant_scope(tenant):
        tags = {tag.external_id: tag for tag in Tag.objects.filter(external_source="rfm")}
        assert {tag.group.name for tag in tags.values()} == {"RFM"}
        assert {tag.kind for tag in tags.values()} == {"system"}
        assert tags["important_value"].name == "重要价值"
        assert tags["important_value"].member_count == 4
        # the history: each run's bitmaps say who was where
        for done in (first, second):
            current = selectors.run_bitmaps(done)
            assert set(current) == {*KNOWN_SCORES_SEGMENTS, "all"}
        assert selectors.run_bitmaps(second)["important_value"] == BitMap(
            known[n].member_no for n in "AEFJ")
        history = selectors.member_history(member=known["J"])
    assert [(h["run"], h["segment"]) for h in history] == [
        (second.pk, "important_value"), (first.pk, "general_retain")]


KNOWN_SCORES_SEGMENTS = {
    "important_value", "important_develop", "important_keep", "important_retain",
    "general_value", "general_develop", "general_keep", "general_retain"}


def _sql_count(tenant, segments: list[str]) -> int:
    with tenant_scope(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rfm_memberrfm WHERE tenant_id = %s AND segment IN "
                       f"({', '.join(['%s'] * len(segments))})", [tenant.pk, *segments])
        return cursor.fetchone()[0]


def test_the_rfm_audience_leaf_counts_what_sql_counts(actor, tenant, known):
    run(actor)
    with tenant_scope(tenant):
        def count(expression):
            return audience_count(Parser().parse(expression))

        assert count({"rfm": "important_value"}) == _sql_count(tenant, ["important_value"]) == 3
        assert count({"rfm": "重要价值"}) == 3
        assert count({"rfm": ["important_value", "一般挽留"]}) == _sql_count(
            tenant, ["important_value", "general_retain"]) == 4
        assert count({"not": {"rfm": "important_value"}}) == 7
        with pytest.raises(ExpressionError) as error:
            Parser().parse({"all": [{"rfm": "vip"}]})
    assert error.value.code == "invalid_expression"
    assert str(error.value.detail) == "$.all[0].rfm: RFM 分群不存在：vip"


def test_one_signal_per_run_with_the_changed_members(actor, tenant, known, cut_points,
                                                      django_capture_on_commit_callbacks):
    run(actor)
    added = _second_run_changes(actor, known)
    sent = []
    signals.rfm_changed.connect(lambda **kw: sent.append(kw), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            second = run(actor)
    finally:
        signals.rfm_changed.disconnect(dispatch_uid="t")
    assert len(sent) == 1
    assert (sent[0]["tenant_id"], sent[0]["run_id"]) == (tenant.pk, second.pk)
    assert sorted(sent[0]["member_ids"]) == sorted([known["J"].pk, known["I"].pk,
                                                    added["K"].pk])


@pytest.fixture
def failing_tags(monkeypatch):
    """tag_apply_chunk fails on its third call (a worker lost mid-run)."""
    from campaigns.rfm.services import systemtags

    real, calls = systemtags.tag_apply_chunk, []

    def failing(**kwargs):
        calls.append(kwargs["tag"].external_id)
        if len(calls) == 3:
            raise RuntimeError("worker lost")
        return real(**kwargs)

    monkeypatch.setattr(systemtags, "tag_apply_chunk", failing)
    return calls


def test_a_run_resumes_its_tags_from_the_checkpoint(actor, tenant, known, failing_tags):
    from campaigns.rfm.services.runs import rfm_run_execute
    from scrm.jobs import job_run

    with pytest.raises(RuntimeError):
        run(actor)
    with tenant_scope(tenant):
        job = Job.objects.get(kind="rfm_run")
        unfinished = RfmRun.objects.get()
        assert (job.status, job.checkpoint) == (Job.Status.FAILED, {
            "run": unfinished.pk, "step": 1, "after": known["B"].member_no})
        assert unfinished.status == RfmRun.Status.TAGGING
        assert MemberTag.objects.filter(tag__external_source="rfm").count() == 4
    # the task runs again (Celery redelivers it): tags from the checkpoint on, no rescoring
    job_run(tenant_id=tenant.pk, job_id=job.pk, runner=rfm_run_execute)
    assert failing_tags[:2] == ["important_value", "important_develop"]
    assert failing_tags[3:] == ["important_keep", "important_retain", "general_value",
                                "general_develop", "general_keep", "general_retain"]
    with tenant_scope(tenant):
        job.refresh_from_db()
        assert (job.status, job.done) == (Job.Status.SUCCEEDED, 10)
        assert RfmRun.objects.get().status == RfmRun.Status.SUCCEEDED
        assert MemberTag.objects.filter(tag__external_source="rfm").count() == 10
    assert segment_tags(tenant, known["A"]) == ["important_value"]


def test_a_new_run_first_finishes_a_dead_runs_tags(actor, tenant, known, failing_tags):
    with pytest.raises(RuntimeError):
        run(actor)
    second = run(actor)
    with tenant_scope(tenant):
        assert list(RfmRun.objects.order_by("pk").values_list("status", flat=True)) == [
            RfmRun.Status.SUCCEEDED, RfmRun.Status.SUCCEEDED]
        assert second.changed == 0
        assert MemberTag.objects.filter(tag__external_source="rfm").count() == 10


def test_a_run_is_refused_while_another_is_tagging(actor, tenant, known, failing_tags):
    from campaigns.rfm.services.runs import rfm_run_start

    with pytest.raises(RuntimeError):
        run(actor)
    with tenant_scope(tenant):
        Job.objects.filter(kind="rfm_run").update(status=Job.Status.RUNNING)  # still alive
        with pytest.raises(Conflict) as error:
            rfm_run_start(actor=actor)
    assert error.value.code == "rfm_run_in_progress"
    with pytest.raises(Conflict) as error:
        run(actor)
    assert error.value.code == "rfm_run_in_progress"


def test_history_is_pruned_after_the_kept_runs(actor, tenant, known, monkeypatch):
    from campaigns.rfm.services import runs

    monkeypatch.setattr(runs, "HISTORY_RUNS", 2)
    first, _second, third = run(actor), run(actor), run(actor)
    with tenant_scope(tenant):
        assert set(RfmRunSegment.objects.values_list("run_id", flat=True).distinct()) == {
            _second.pk, third.pk}
        assert RfmRun.objects.count() == 3
        with pytest.raises(Conflict) as error:
            selectors.movement(run_from=first, run_to=third)
    assert error.value.code == "rfm_history_pruned"


def test_configured_window_and_highs_are_snapshotted(actor, tenant, known):
    with tenant_scope(tenant):
        rfm_config_update(actor=actor, changes={"window_days": 90, "r_high": 4})
        assert RfmConfig.objects.get().window_days == 90
    result = run(actor)
    assert result.config == {
        "window_days": 90, "scoring": "quintile",
        "thresholds": {"r": [], "f": [], "m": []}, "high": {"r": 4, "f": 3, "m": 3},
        "cuts": {"r": [1, 3, 5, 7], "f": [3, 5, 7, 9],
                 "m": [200_001, 400_001, 600_001, 800_001]}}
    assert result.window_start == NOW - 90 * DAY
