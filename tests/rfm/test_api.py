"""The RFM and lifecycle API: shapes, validation errors with their codes, scopes, jobs, and
other tenants seeing nothing."""

import pytest

from campaigns.rfm.models import LifecycleConfig, RfmConfig, RfmRun
from campaigns.rfm.services.lifecycle import lifecycle_pass
from campaigns.rfm.services.runs import rfm_run_now
from scrm.access import MEMBERS_READ
from scrm.models import AuditEntry, Job
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.rfm.conftest import DAY, NOW, add_order, add_orders, new_member

RFM_CONFIG = "/api/v1/rfm/config/"
LIFECYCLE_CONFIG = "/api/v1/lifecycle/config/"
RUNS = "/api/v1/rfm/runs/"
MOVEMENT = "/api/v1/rfm/movement/"
FUNNEL = "/api/v1/lifecycle/funnel/"


def body(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json()


def patch(client, url, data):
    return client.patch(url, data, format="json")


def run(actor, now=NOW) -> RfmRun:
    with tenant_scope(actor.tenant):
        return rfm_run_now(actor=actor, now=now)


@pytest.fixture
def reader(tenant):
    return client_for(tenant, scopes=[MEMBERS_READ])


def test_the_rfm_config_has_defaults_and_changes(api_client, tenant):
    assert body(api_client.get(RFM_CONFIG)) == {
        "window_days": 365, "scoring": "quintile", "r_thresholds": [], "f_thresholds": [],
        "m_thresholds": [], "r_high": 3, "f_high": 3, "m_high": 3,
        "updated_at": body(api_client.get(RFM_CONFIG))["updated_at"]}
    changed = body(patch(api_client, RFM_CONFIG, {
        "window_days": 90, "scoring": "thresholds", "r_thresholds": [7, 30, 60, 90],
        "f_thresholds": [2, 3, 5, 8], "m_thresholds": [10000, 50000, 100000, 500000],
        "m_high": 4}))
    assert (changed["window_days"], changed["scoring"], changed["r_thresholds"],
            changed["m_high"]) == (90, "thresholds", [7, 30, 60, 90], 4)
    with tenant_scope(tenant):
        assert AuditEntry.objects.filter(action="rfm.config_update").count() == 1


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"scoring": "thresholds"}, "rfm_thresholds_required", "r_thresholds"),
    ({"f_thresholds": [2, 2, 5, 8]}, "rfm_thresholds_unordered", "f_thresholds"),
    ({"r_thresholds": [30, 7, 60, 90]}, "rfm_thresholds_unordered", "r_thresholds"),
    ({"m_thresholds": [1, 2, 3]}, "invalid_rfm_thresholds", "m_thresholds"),
    ({"m_thresholds": [-1, 2, 3, 4]}, "validation_error", "m_thresholds"),
    ({"r_high": 6}, "validation_error", "r_high"),
    ({"window_days": 0}, "validation_error", "window_days"),
    ({"scoring": "ntile"}, "validation_error", "scoring"),
    ({"window": 30}, "validation_error", "window"),
])
def test_bad_rfm_config_is_refused_with_a_code_and_nothing_changes(api_client, tenant, change,
                                                                   code, field):
    response = patch(api_client, RFM_CONFIG, change)
    assert response.status_code == 400
    assert (response.json()["code"], list(response.json()["errors"])) == (code, [field])
    with tenant_scope(tenant):
        assert not RfmConfig.objects.exists()  # the refused request wrote nothing
    assert body(api_client.get(RFM_CONFIG))["scoring"] == "quintile"


def test_unordered_thresholds_say_so(api_client):
    response = patch(api_client, RFM_CONFIG, {"f_thresholds": [2, 2, 5, 8]})
    assert response.json()["message"] == "f_thresholds 必须严格递增：[2, 2, 5, 8]"


def test_the_lifecycle_config_and_its_rules(api_client, tenant):
    assert body(api_client.get(LIFECYCLE_CONFIG)) == {
        "new_days": 30, "loyal_orders": 5, "loyal_spend_fen": 0, "loyal_window_days": 365,
        "dormant_days": 90, "lost_days": 180, "last_pass_at": None,
        "updated_at": body(api_client.get(LIFECYCLE_CONFIG))["updated_at"]}
    response = patch(api_client, LIFECYCLE_CONFIG, {"dormant_days": 200})
    assert response.status_code == 400
    assert response.json()["code"] == "lifecycle_days_unordered"
    assert response.json()["errors"] == {"lost_days": ["流失天数（180）必须大于沉睡天数（200）。"]}
    assert body(patch(api_client, LIFECYCLE_CONFIG, {"dormant_days": 60, "lost_days": 120,
                                                     "loyal_spend_fen": 300000}))[
        "lost_days"] == 120
    response = patch(api_client, LIFECYCLE_CONFIG, {"loyal_orders": 1})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_lifecycle_config")
    with tenant_scope(tenant):
        config = LifecycleConfig.objects.get()
        assert (config.loyal_orders, config.lost_days) == (5, 120)


def test_changing_settings_and_starting_runs_need_tags_manage(reader, tenant):
    assert body(reader.get(RFM_CONFIG))["window_days"] == 365
    assert reader.patch(RFM_CONFIG, {"window_days": 30}, format="json").status_code == 403
    assert reader.patch(LIFECYCLE_CONFIG, {"new_days": 7}, format="json").status_code == 403
    assert reader.post(RUNS, {}, format="json").status_code == 403
    with tenant_scope(tenant):
        assert RfmConfig.objects.get().window_days == 365  # made by the GET, then unchanged
        assert not Job.objects.exists()


def test_a_run_is_started_as_a_job(api_client, actor, tenant, known,
                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = body(api_client.post(RUNS, {"now": NOW.isoformat()}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="run-1"), 202)
    assert (job["kind"], job["status"]) == ("rfm_run", "pending")
    done = body(api_client.get(f"/api/v1/jobs/{job['id']}/"))
    assert done["status"] == "succeeded"
    runs = body(api_client.get(RUNS))["results"]
    assert [r["id"] for r in runs] == [done["result"]["run"]]
    detail = body(api_client.get(f"{RUNS}{runs[0]['id']}/"))
    assert detail == runs[0]
    assert detail["counts"][0] == {"segment": "important_value", "name": "重要价值", "count": 3}
    assert detail["counts"][-1] == {"segment": "none", "name": "无分群", "count": 0}
    assert [c["count"] for c in detail["counts"]] == [3, 1, 1, 1, 1, 1, 1, 1, 0]
    assert (detail["members"], detail["scored"], detail["changed"], detail["status"]) == (
        10, 10, 10, "succeeded")
    assert detail["as_of"] == "2026-06-30T20:00:00+08:00"
    assert detail["config"]["cuts"] == {"r": [1, 3, 5, 7], "f": [3, 5, 7, 9],
                                        "m": [200001, 400001, 600001, 800001]}
    assert set(detail["timings"]) >= {"aggregate", "cuts", "compare", "write", "tags"}
    # the same key again replays the first answer
    again = api_client.post(RUNS, {"now": NOW.isoformat()}, format="json",
                            HTTP_IDEMPOTENCY_KEY="run-1")
    assert (again.status_code, again.json()["id"]) == (202, job["id"])


def test_a_second_start_while_one_is_queued_is_a_conflict(api_client, tenant):
    body(api_client.post(RUNS, {}, format="json"), 202)  # queued: its task runs on commit
    response = api_client.post(RUNS, {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "rfm_run_in_progress")


def test_the_movement_matrix_and_its_cells(api_client, actor, tenant, known):
    first = run(actor)
    add_orders(known["J"], count=6, total_fen=600_000, last_at=NOW - DAY / 24)
    second = run(actor)
    moved = body(api_client.get(MOVEMENT, {"from": first.pk, "to": second.pk}))
    assert moved["segments"] == ["important_value", "important_develop", "important_keep",
                                 "important_retain", "general_value", "general_develop",
                                 "general_keep", "general_retain", "none"]
    assert moved["names"]["general_retain"] == "一般挽留"
    assert set(moved["matrix"]) == set(moved["segments"])
    assert all(set(row) == set(moved["segments"]) for row in moved["matrix"].values())
    assert sum(sum(row.values()) for row in moved["matrix"].values()) == 10
    assert moved["from_counts"]["general_retain"] == 1
    cells = {(s, t): n for s, row in moved["matrix"].items() for t, n in row.items()
             if s != t and n}
    assert moved["moved"] == sum(cells.values()) > 0
    (source, target), count = next(iter(sorted(cells.items())))
    members = body(api_client.get(f"{MOVEMENT}members/", {
        "from": first.pk, "to": second.pk, "from_segment": source, "to_segment": target}))
    assert members["count"] == count == len(members["members"])
    assert set(members["members"][0]) == {"id", "member_no", "name"}
    assert members["next_after"] is None


def test_movement_needs_two_runs_of_the_tenant(api_client, other_api_client, actor, known):
    done = run(actor)
    response = api_client.get(MOVEMENT, {"from": done.pk})
    assert (response.status_code, list(response.json()["errors"])) == (400, ["to"])
    response = api_client.get(MOVEMENT, {"from": done.pk, "to": done.pk + 1000})
    assert response.status_code == 404
    assert other_api_client.get(MOVEMENT, {"from": done.pk, "to": done.pk}).status_code == 404
    assert other_api_client.get(f"{RUNS}{done.pk}/").status_code == 404
    assert other_api_client.get(RUNS).json()["results"] == []


def test_a_members_rfm_stage_and_history(api_client, other_api_client, actor, tenant, known):
    first = run(actor)
    second = run(actor, now=NOW + DAY)
    with tenant_scope(tenant):
        lifecycle_pass(now=NOW)
    a = known["A"]
    answer = body(api_client.get(f"/api/v1/members/{a.pk}/rfm/"))
    assert answer["member"] == a.pk
    assert answer["rfm"] == {
        "segment": "important_value", "segment_name": "重要价值", "r": 5, "f": 5, "m": 5,
        "last_order_at": "2026-06-30T18:00:00+08:00", "frequency": 10,
        "monetary_fen": 1_000_000, "previous_segment": None,
        "segment_since": "2026-06-30T20:00:00+08:00",
        "updated_at": answer["rfm"]["updated_at"]}
    assert answer["lifecycle"] == {"stage": "loyal", "stage_name": "忠诚",
                                   "previous_stage": None,
                                   "changed_at": "2026-06-30T20:00:00+08:00"}
    assert [(h["run"], h["segment"], h["segment_name"]) for h in answer["history"]] == [
        (second.pk, "important_value", "重要价值"), (first.pk, "important_value", "重要价值")]
    assert len(body(api_client.get(f"/api/v1/members/{a.pk}/rfm/", {"runs": 1}))[
        "history"]) == 1
    assert other_api_client.get(f"/api/v1/members/{a.pk}/rfm/").status_code == 404


def test_a_member_without_orders_has_no_scores(api_client, actor, known):
    run(actor)
    member = new_member(actor)
    answer = body(api_client.get(f"/api/v1/members/{member.pk}/rfm/"))
    assert (answer["rfm"], answer["lifecycle"], answer["history"]) == (None, None, [])


def test_the_funnel(api_client, other_api_client, actor, tenant):
    buyers = [new_member(actor) for _ in range(3)]
    new_member(actor)  # a prospect
    add_order(buyers[0], at=NOW - DAY, amount_fen=1000)
    add_order(buyers[1], at=NOW - 100 * DAY, amount_fen=1000)
    add_order(buyers[2], at=NOW - 300 * DAY, amount_fen=1000)
    with tenant_scope(tenant):
        lifecycle_pass(now=NOW)
    new_member(actor)  # joined after the pass
    funnel = body(api_client.get(FUNNEL))
    assert funnel == {
        "stages": [
            {"stage": "prospect", "name": "潜客", "count": 1, "share": 0.25},
            {"stage": "new", "name": "新客", "count": 1, "share": 0.25},
            {"stage": "repeat", "name": "复购", "count": 0, "share": 0},
            {"stage": "loyal", "name": "忠诚", "count": 0, "share": 0},
            {"stage": "dormant", "name": "沉睡", "count": 1, "share": 0.25},
            {"stage": "lost", "name": "流失", "count": 1, "share": 0.25}],
        "evaluated": 4, "unevaluated": 1}
    assert body(other_api_client.get(FUNNEL))["evaluated"] == 0
    assert body(other_api_client.get(LIFECYCLE_CONFIG))["last_pass_at"] is None
