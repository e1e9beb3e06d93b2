"""Campaigns: a run reaches each member of the frozen audience once, holds out the control
group, respects consent, the frequency cap, quiet hours and the throttle, survives a crash,
and reports what it achieved."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.services.campaigns import campaign_launch, campaign_run, campaign_save
from campaigns.services.policy import policy_update
from campaigns.services.results import campaign_results
from members.models import Member
from members.services import member_upsert, order_ingest
from points.models import PointsEntry
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag, TagGroup
from tags.services.segments import segment_save

CAMPAIGNS = "/api/v1/campaigns/"


@pytest.fixture
def actor(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def people(actor, count: int, *, consent: bool = True, city: str = "上海") -> list[Member]:
    with tenant_scope(actor.tenant):
        return [member_upsert(actor=actor, identities=[
            {"kind": "external", "app_id": "crm",
             "value": f"p{city.encode().hex()}{int(consent)}x{i}"}],
            profile={"city": city, "marketing_consent": consent})[0] for i in range(count)]


def make(actor, *, actions=None, **changes) -> Campaign:
    with tenant_scope(actor.tenant):
        segment = segment_save(actor=actor, name="上海会员",
                               expression={"field": "city", "op": "eq", "value": "上海"})
        return campaign_save(actor=actor, changes={"name": "双十二回馈", "segment": segment,
                                                   **changes},
                             actions=actions or [{"kind": "points",
                                                  "params": {"points": 88}}])


def run_now(actor, campaign, **kwargs) -> CampaignRun:
    with tenant_scope(actor.tenant):
        run = campaign_launch(actor=actor, campaign=campaign)
        run = CampaignRun.objects.select_related("campaign__tenant").get(pk=run.pk)
        return campaign_run(run=run, **kwargs)


def statuses(tenant) -> dict[str, int]:
    with tenant_scope(tenant):
        from django.db.models import Count

        return dict(Delivery.objects.values("status").annotate(n=Count("pk")).values_list(
            "status", "n"))


def test_a_run_reaches_each_consenting_member_once(actor, tenant):
    reached = people(actor, 12)
    people(actor, 3, consent=False)
    people(actor, 4, city="北京")
    campaign = make(actor)
    run = run_now(actor, campaign, chunk=5)
    assert run.status == "completed"
    assert statuses(tenant) == {"sent": 12, "no_consent": 3}
    with tenant_scope(tenant):
        assert sorted(PointsEntry.objects.filter(ref_type="campaign").values_list(
            "member_id", flat=True)) == sorted(m.pk for m in reached)
        assert Campaign.objects.get().status == "completed"
    with tenant_scope(tenant):
        again = CampaignRun.objects.select_related("campaign__tenant").get(pk=run.pk)
        CampaignRun.objects.filter(pk=run.pk).update(status="running", after_member_no=-1)
        again.refresh_from_db()
        campaign_run(run=again, chunk=5)
        assert PointsEntry.objects.filter(ref_type="campaign").count() == 12


def test_a_crashed_run_resumes_and_reaches_nobody_twice(actor, tenant):
    people(actor, 23)
    campaign = make(actor, actions=[{"kind": "points", "params": {"points": 5}}])
    first = run_now(actor, campaign, chunk=10, stop_after=1)  # the worker dies after a chunk
    assert (first.status, first.done) == ("running", 10)
    with tenant_scope(tenant):
        resumed = campaign_run(run=CampaignRun.objects.select_related(
            "campaign__tenant").get(pk=first.pk), chunk=10)
    assert resumed.status == "completed"
    assert statuses(tenant) == {"sent": 23}
    with tenant_scope(tenant):
        assert PointsEntry.objects.filter(ref_type="campaign").count() == 23


def test_the_control_group_is_held_out_and_measured(actor, tenant):
    members = people(actor, 200)
    campaign = make(actor, control_percent=20)
    run_now(actor, campaign, chunk=50)
    counts = statuses(tenant)
    assert counts["sent"] + counts["control"] == 200
    assert 20 <= counts["control"] <= 60
    with tenant_scope(tenant):
        buyer = Delivery.objects.filter(status="sent").first().member
        order_ingest(actor=actor, data={
            "order_no": "A1", "channel": "pos", "paid_at": timezone.now(), "amount_fen": 50000,
            "buyer": {"identities": [{"kind": "external", "app_id": "crm",
                                      "value": buyer.identities.get().value}]},
            "lines": [{"sku": "S", "product": "P", "quantity": 1, "price_fen": 50000}]})
        result = campaign_results(campaign=campaign)
    assert (result["reached"], result["buyers"], result["gmv_fen"]) == (counts["sent"], 1, 50000)
    assert result["points"]["points"] == 88 * counts["sent"]
    assert result["cost_fen"] == 88 * counts["sent"]
    assert result["control_buyers"] == 0
    assert len(members) == 200


def test_the_frequency_cap_spans_campaigns(actor, tenant):
    people(actor, 5)
    with tenant_scope(tenant):
        policy_update(actor=actor, changes={"max_touches": 1, "period_days": 7})
    run_now(actor, make(actor))
    second = run_now(actor, make(actor, name="再来一次"))
    assert second.counts == {"capped": 5}


def test_quiet_hours_park_the_run_until_they_end(actor, tenant):
    people(actor, 3)
    with tenant_scope(tenant):
        policy_update(actor=actor, changes={"quiet_start": dt.time(22, 0),
                                            "quiet_end": dt.time(8, 0)})
    night = timezone.make_aware(dt.datetime(2026, 12, 1, 23, 30))
    run = run_now(actor, make(actor), now=night)
    with tenant_scope(tenant):
        run.refresh_from_db()
        assert run.status == "waiting"
        assert timezone.localtime(run.next_at) == timezone.make_aware(
            dt.datetime(2026, 12, 2, 8, 0))
        assert not Delivery.objects.exists()


def test_the_throttle_parks_the_run_for_a_minute(actor, tenant):
    people(actor, 12)
    run = run_now(actor, make(actor, throttle_per_minute=5), chunk=5)
    with tenant_scope(tenant):
        run.refresh_from_db()
        assert (run.status, run.done) == ("running", 5)
        assert run.next_at > timezone.now() + dt.timedelta(seconds=30)


def test_a_recurring_campaign_schedules_its_next_run(actor, tenant):
    people(actor, 2)
    campaign = make(actor, schedule="recurring", cron="0 10 * * 1")
    with tenant_scope(tenant):
        first = campaign_launch(actor=actor, campaign=campaign)
        assert timezone.localtime(first.due_at).weekday() == 0
        CampaignRun.objects.filter(pk=first.pk).update(next_at=timezone.now())
        campaign_run(run=CampaignRun.objects.select_related("campaign__tenant").get(
            pk=first.pk))
        runs = list(CampaignRun.objects.order_by("occurrence").values_list("occurrence",
                                                                           "status"))
        assert runs == [(1, "completed"), (2, "waiting")]
        assert Campaign.objects.get().status == "scheduled"


def test_a_tag_action_tags_the_audience(actor, tenant):
    reached = people(actor, 4)
    with tenant_scope(tenant):
        tag = Tag.objects.create(group=TagGroup.objects.create(name="活动"), name="双十二参与")
    run_now(actor, make(actor, actions=[{"kind": "tag", "params": {"tag": tag.pk}}]))
    with tenant_scope(tenant):
        assert sorted(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True)) \
            == sorted(m.pk for m in reached)


def test_bad_campaigns_are_refused(api_client, actor, tenant):
    with tenant_scope(tenant):
        segment = segment_save(actor=actor, name="全部", expression={
            "field": "order_count", "op": "gte", "value": 0})
    cases = [
        ({"name": "x", "segment": segment.pk, "actions": []}, "invalid_action"),
        ({"name": "x", "segment": segment.pk, "actions": [
            {"kind": "tag", "params": {"tag": 999}}]}, "invalid_action"),
        ({"name": "x", "segment": segment.pk, "schedule": "recurring", "cron": "bad",
          "actions": [{"kind": "points", "params": {"points": 1}}]}, "invalid_cron"),
        ({"name": "x", "segment": segment.pk, "schedule": "at",
          "actions": [{"kind": "points", "params": {"points": 1}}]}, "start_at_required"),
        ({"name": "x", "segment": 999, "actions": []}, "validation_error"),
    ]
    for body, code in cases:
        response = api_client.post(CAMPAIGNS, body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, code), body
    with tenant_scope(tenant):
        assert not Campaign.objects.exists()


def test_the_api_launches_a_campaign_and_reports_results(api_client, actor, tenant,
                                                         other_api_client,
                                                         django_capture_on_commit_callbacks):
    people(actor, 6)
    with tenant_scope(tenant):
        segment = segment_save(actor=actor, name="上海", expression={
            "field": "city", "op": "eq", "value": "上海"})
    created = api_client.post(CAMPAIGNS, {
        "name": "会员日", "segment": segment.pk,
        "actions": [{"kind": "points", "params": {"points": 10, "reason": "会员日"}}]},
        format="json")
    assert created.status_code == 201, created.json()
    campaign_id = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        launched = api_client.post(f"{CAMPAIGNS}{campaign_id}/launch/")
    assert launched.status_code == 202
    results = api_client.get(f"{CAMPAIGNS}{campaign_id}/results/").json()
    assert (results["reached"], results["points"]["points"]) == (6, 60)
    assert api_client.post(f"{CAMPAIGNS}{campaign_id}/launch/").json()["code"] == \
        "campaign_not_draft"
    assert other_api_client.get(f"{CAMPAIGNS}{campaign_id}/").status_code == 404
    deliveries = api_client.get(f"{CAMPAIGNS}{campaign_id}/deliveries/").json()["results"]
    assert len(deliveries) == 6
