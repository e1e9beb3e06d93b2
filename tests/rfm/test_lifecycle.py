"""Lifecycle stages: incrementally when an order arrives or is refunded (through the API and
the after-commit task), on the schedule as time passes (a controllable "now"), timeline
events and the domain event, system tags and the ``{"lifecycle": ...}`` leaf, merges."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.rfm import signals
from campaigns.rfm.models import MemberLifecycle
from campaigns.rfm.services.config import lifecycle_config_update
from campaigns.rfm.services.lifecycle import lifecycle_evaluate, lifecycle_pass
from members.models import Member, TimelineEvent
from members.services import member_merge
from scrm.tenancy import tenant_scope
from tags.audience.expressions import Parser
from tags.audience.index import audience_count
from tags.models import MemberTag
from tests.members.test_api_orders import order_payload, refunds_url
from tests.rfm.conftest import DAY, NOW, add_order, add_orders, new_member

ORDERS = "/api/v1/orders/"
PHONE = "13800138000"


def stage_of(tenant, member_id) -> str | None:
    with tenant_scope(tenant):
        return MemberLifecycle.objects.filter(member_id=member_id).values_list(
            "stage", flat=True).first()


def events(tenant, member_id) -> list[tuple]:
    with tenant_scope(tenant):
        return [(e.data["from"], e.data["to"], e.data["to_name"]) for e in
                TimelineEvent.objects.filter(member_id=member_id, kind="lifecycle.changed")
                .order_by("id")]


def stage_tags(tenant, member_id) -> list[str]:
    with tenant_scope(tenant):
        return sorted(MemberTag.objects.filter(member_id=member_id,
                                               tag__external_source="lifecycle")
                      .values_list("tag__external_id", flat=True))


def pay(client, capture, *, order_no: str, days_ago: float, amount_fen: int = 10_000) -> dict:
    paid_at = (timezone.now() - timedelta(days=days_ago)).isoformat()
    body = order_payload(order_no=order_no, paid_at=paid_at, amount_fen=amount_fen, store=None,
                         buyer={"identities": [{"kind": "phone", "value": PHONE}]},
                         lines=[{"sku": "SK-1", "product": "精华液", "quantity": 1,
                                 "price_fen": amount_fen}])
    with capture(execute=True):
        response = client.post(ORDERS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_order_makes_a_new_customer_and_a_second_one_a_repeat_customer(
        api_client, tenant, django_capture_on_commit_callbacks):
    first = pay(api_client, django_capture_on_commit_callbacks, order_no="A1", days_ago=40)
    member_id = first["member"]
    assert stage_of(tenant, member_id) == "new"  # exactly one order
    assert stage_tags(tenant, member_id) == ["new"]
    pay(api_client, django_capture_on_commit_callbacks, order_no="A2", days_ago=0)
    assert stage_of(tenant, member_id) == "repeat"  # first order 40 days ago: past new_days
    assert stage_tags(tenant, member_id) == ["repeat"]
    assert events(tenant, member_id) == [(None, "new", "新客"), ("new", "repeat", "复购")]
    with tenant_scope(tenant):
        row = MemberLifecycle.objects.get(member_id=member_id)
        assert row.previous_stage == "new"


def test_a_second_order_within_the_new_period_stays_new(
        api_client, tenant, django_capture_on_commit_callbacks):
    member_id = pay(api_client, django_capture_on_commit_callbacks, order_no="B1",
                    days_ago=10)["member"]
    pay(api_client, django_capture_on_commit_callbacks, order_no="B2", days_ago=0)
    assert stage_of(tenant, member_id) == "new"
    assert events(tenant, member_id) == [(None, "new", "新客")]


def test_refunding_the_only_order_makes_a_prospect_again(
        api_client, tenant, django_capture_on_commit_callbacks):
    order = pay(api_client, django_capture_on_commit_callbacks, order_no="C1", days_ago=3)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(refunds_url(order["id"]),
                                   {"refund_no": "R1", "amount_fen": 10_000}, format="json")
    assert response.status_code == 201, response.json()
    assert stage_of(tenant, order["member"]) == "prospect"
    assert events(tenant, order["member"])[-1] == ("new", "prospect", "潜客")


def test_the_schedule_moves_repeat_to_dormant_to_lost(actor, tenant):
    member = new_member(actor)
    add_order(member, at=NOW - 60 * DAY, amount_fen=1000)
    add_order(member, at=NOW - DAY, amount_fen=1000)
    quiet = new_member(actor)  # never bought
    with tenant_scope(tenant):
        first = lifecycle_pass(now=NOW)
        assert stage_of(tenant, member.pk) == "repeat"
        assert stage_of(tenant, quiet.pk) == "prospect"
        assert events(tenant, member.pk) == []  # the first pass only sets the stages
        assert first.changed == 2
        lifecycle_pass(now=NOW + 91 * DAY)  # 92 days without an order
        assert stage_of(tenant, member.pk) == "dormant"
        unchanged = lifecycle_pass(now=NOW + 92 * DAY)
        assert unchanged.changed == 0
        lifecycle_pass(now=NOW + 181 * DAY)
        assert stage_of(tenant, member.pk) == "lost"
    assert events(tenant, member.pk) == [("repeat", "dormant", "沉睡"),
                                         ("dormant", "lost", "流失")]
    assert stage_tags(tenant, member.pk) == ["lost"]
    assert events(tenant, quiet.pk) == []


@pytest.mark.parametrize(("days", "stage"), [(89, "repeat"), (90, "repeat"), (91, "dormant"),
                                             (180, "dormant"), (181, "lost")])
def test_the_days_without_an_order_at_the_edges(actor, tenant, days, stage):
    member = new_member(actor)
    add_order(member, at=NOW - 200 * DAY, amount_fen=1000)
    add_order(member, at=NOW - days * DAY, amount_fen=1000)
    with tenant_scope(tenant):
        lifecycle_pass(now=NOW)
    # "no purchase in 90 days": an order exactly 90 days ago still counts
    assert stage_of(tenant, member.pk) == stage


def test_loyal_by_orders_or_by_spend_within_the_window(actor, tenant):
    by_orders, by_spend, long_ago, neither = (new_member(actor) for _ in range(4))
    add_orders(by_orders, count=5, total_fen=5000, last_at=NOW - DAY)
    add_orders(by_spend, count=2, total_fen=800_000, last_at=NOW - DAY, spacing=60 * DAY)
    add_orders(long_ago, count=4, total_fen=4000, last_at=NOW - 400 * DAY)  # outside
    add_order(long_ago, at=NOW - DAY, amount_fen=1000)
    add_orders(neither, count=3, total_fen=3000, last_at=NOW - DAY, spacing=20 * DAY)
    with tenant_scope(tenant):
        lifecycle_config_update(actor=actor, changes={"loyal_spend_fen": 500_000})
        lifecycle_pass(now=NOW)
    assert [stage_of(tenant, m.pk) for m in (by_orders, by_spend, long_ago, neither)] == [
        "loyal", "loyal", "repeat", "repeat"]


def test_the_lifecycle_leaf_counts_the_stage_tags(actor, tenant):
    members = [new_member(actor) for _ in range(4)]
    add_order(members[0], at=NOW - DAY, amount_fen=1000)
    add_order(members[1], at=NOW - 100 * DAY, amount_fen=1000)
    add_order(members[2], at=NOW - 120 * DAY, amount_fen=1000)
    with tenant_scope(tenant):
        lifecycle_pass(now=NOW)
        assert audience_count(Parser().parse({"lifecycle": "dormant"})) == 2
        assert audience_count(Parser().parse({"lifecycle": "沉睡"})) == 2
        assert audience_count(Parser().parse({"lifecycle": ["new", "潜客"]})) == 2
        assert MemberLifecycle.objects.filter(stage="dormant").count() == 2


def test_one_signal_per_evaluation_with_from_and_to(actor, tenant,
                                                   django_capture_on_commit_callbacks):
    member = new_member(actor)
    add_order(member, at=NOW - DAY, amount_fen=1000)
    sent = []
    signals.lifecycle_changed.connect(lambda **kw: sent.append(kw), weak=False,
                                      dispatch_uid="t")
    try:
        with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
            lifecycle_pass(now=NOW)  # the first pass: no signal
            lifecycle_pass(now=NOW + 100 * DAY)
    finally:
        signals.lifecycle_changed.disconnect(dispatch_uid="t")
    assert sent == [{"signal": signals.lifecycle_changed, "sender": MemberLifecycle,
                     "tenant_id": tenant.pk, "changes": [(member.pk, "new", "dormant")]}]


def test_a_merge_leaves_the_survivor_with_its_own_stage_tag(actor, tenant):
    survivor, merged = new_member(actor), new_member(actor)
    add_order(survivor, at=NOW - DAY, amount_fen=1000)
    add_order(merged, at=NOW - 100 * DAY, amount_fen=1000)
    with tenant_scope(tenant):
        lifecycle_pass(now=NOW)
        assert stage_tags(tenant, merged.pk) == ["dormant"]
        member_merge(actor=actor, survivor=Member.objects.get(pk=survivor.pk),
                     merged=Member.objects.get(pk=merged.pk), reason="manual")
        lifecycle_evaluate(member_ids=[survivor.pk], now=NOW)
    assert stage_tags(tenant, survivor.pk) == ["repeat"]  # two orders now, the first long ago
    assert stage_tags(tenant, merged.pk) == []
    assert stage_of(tenant, merged.pk) is None


def test_the_scheduled_job_scores_then_stages_from_the_runs_figures(actor, tenant, known,
                                                                    monkeypatch):
    """The daily task: one "now" for both; the loyalty window read from the run's member
    rows gives the same stages as from the orders."""
    from campaigns.rfm import tasks
    from campaigns.rfm.services.runs import rfm_run_now

    with tenant_scope(tenant):
        run = rfm_run_now(actor=actor, now=NOW)
        from_rfm = lifecycle_pass(now=NOW, rfm_run=run)
        assert from_rfm.changed == 10
        stages = dict(MemberLifecycle.objects.values_list("member_id", "stage"))
        MemberLifecycle.objects.all().delete()
        lifecycle_pass(now=NOW)
        assert dict(MemberLifecycle.objects.values_list("member_id", "stage")) == stages
    # five orders or more: loyal; the others' first orders are under 30 days old: new
    assert {name: stages[m.pk] for name, m in known.items()} == {
        "A": "loyal", "B": "new", "C": "loyal", "D": "new", "E": "loyal", "F": "loyal",
        "G": "loyal", "H": "new", "I": "loyal", "J": "new"}
    monkeypatch.setattr(timezone, "now", lambda: NOW + DAY)
    result = tasks.rfm_lifecycle_task(tenant.pk)
    assert set(result) == {"rfm_run", "lifecycle_changed"}
    with tenant_scope(tenant):
        assert MemberLifecycle.objects.filter(changed_at=NOW + DAY).count() == \
            result["lifecycle_changed"]
