"""Another tenant sees none of our RFM and lifecycle data and changes none of it: through
every endpoint (404 or its own empty answer), through its own runs, and in the database
(row-level security on every table of the app)."""

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from campaigns.rfm.models import (
    LifecycleConfig,
    MemberLifecycle,
    MemberRfm,
    RfmConfig,
    RfmRun,
    RfmRunSegment,
)
from campaigns.rfm.services.lifecycle import lifecycle_pass
from campaigns.rfm.services.runs import rfm_run_now
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import MemberTag
from tests.rfm.conftest import NOW

MODELS = (RfmConfig, RfmRun, RfmRunSegment, MemberRfm, LifecycleConfig, MemberLifecycle)


def snapshot(tenant) -> dict:
    with tenant_scope(tenant):
        state = {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}
        state["tags"] = sorted(MemberTag.objects.values_list("member_id", "tag_id"))
    return state


@pytest.fixture
def ours(actor, tenant, known) -> dict:
    with tenant_scope(tenant):
        first = rfm_run_now(actor=actor, now=NOW)
        lifecycle_pass(now=NOW)
    return {"run": first, "member": known["A"], "before": snapshot(tenant)}


def test_every_endpoint_answers_the_other_tenant_with_its_own_nothing(other_api_client,
                                                                      tenant, ours):
    run_id, member_id = ours["run"].pk, ours["member"].pk
    for url in (f"/api/v1/rfm/runs/{run_id}/", f"/api/v1/members/{member_id}/rfm/"):
        assert other_api_client.get(url).status_code == 404, url
    assert other_api_client.get("/api/v1/rfm/movement/", {
        "from": run_id, "to": run_id}).status_code == 404
    assert other_api_client.get("/api/v1/rfm/movement/members/", {
        "from": run_id, "to": run_id, "from_segment": "none",
        "to_segment": "none"}).status_code == 404
    assert other_api_client.get("/api/v1/rfm/runs/").json()["results"] == []
    assert other_api_client.get("/api/v1/lifecycle/funnel/").json()["evaluated"] == 0
    assert other_api_client.patch("/api/v1/rfm/config/", {"window_days": 30},
                                  format="json").json()["window_days"] == 30
    assert other_api_client.patch("/api/v1/lifecycle/config/", {"new_days": 7},
                                  format="json").json()["new_days"] == 7
    assert other_api_client.post("/api/v1/rfm/runs/", {}, format="json").status_code == 202
    assert snapshot(tenant) == ours["before"]


def test_the_other_tenants_runs_touch_nothing_of_ours(other_tenant, tenant, ours):
    with tenant_scope(other_tenant):
        theirs = rfm_run_now(actor=Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)),
                             now=NOW)
        lifecycle_pass(now=NOW)
    assert (theirs.members, theirs.scored, theirs.changed) == (0, 0, 0)
    assert snapshot(tenant) == ours["before"]


@pytest.mark.postgres
def test_row_level_security_hides_every_table_of_the_app(other_tenant, tenant, ours):
    with tenant_scope(other_tenant), connection.cursor() as cursor:
        for model in MODELS:
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")  # noqa: S608
            assert cursor.fetchone()[0] == 0, model.__name__
        with pytest.raises(ProgrammingError), transaction.atomic():
            cursor.execute("INSERT INTO rfm_memberlifecycle (tenant_id, member_id, member_no, "
                           "stage, previous_stage, changed_at) VALUES (%s, %s, 1, 'new', '', "
                           "now())", [tenant.pk, ours["member"].pk])
    with tenant_scope(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rfm_memberrfm")
        assert cursor.fetchone()[0] == 10
