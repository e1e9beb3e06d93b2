"""The points API: balances and ledger, earn / redeem / adjust / check-in, the policy and
the liability report; bad input and other tenants' members change nothing."""

import pytest
from django.test import Client

from points.models import PointsPolicy
from points.services.growth import member_tier_override
from points.services.policy import policy_get
from points.services.tiers import tier_program_save
from scrm.access import POINTS_READ, POINTS_WRITE
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.points.conftest import days, new_member, state

EARN = "/api/v1/points/earn/"
REDEEM = "/api/v1/points/redeem/"
ADJUST = "/api/v1/points/adjust/"
POLICY = "/api/v1/points/policy/"
LIABILITY = "/api/v1/points/liability/"


def points_url(member_id: int, tail: str = "") -> str:
    return f"/api/v1/members/{member_id}/points/{tail}"


@pytest.fixture
def funded(api_client, member) -> dict:
    response = api_client.post(EARN, {"member": member.pk, "points": 100, "reason": "线下活动"},
                               format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_earning_answers_with_the_transaction_and_the_balance(api_client, member, funded):
    transaction = funded["transaction"]
    assert set(transaction) == {"id", "member", "kind", "points", "balance_after",
                                "shortfall_delta", "reason", "ref_type", "ref_id", "operator",
                                "created_at"}
    assert {key: transaction[key] for key in ("member", "kind", "points", "balance_after",
                                              "reason", "ref_type", "ref_id")} == {
        "member": member.pk, "kind": "earn", "points": 100, "balance_after": 100,
        "reason": "线下活动", "ref_type": "", "ref_id": ""}
    assert transaction["operator"].startswith("api_key:")
    assert transaction["created_at"].endswith("+08:00")  # shown in Asia/Shanghai
    assert (funded["balance"], funded["shortfall"]) == (100, 0)


def test_redeeming_answers_like_earning(api_client, member, funded):
    response = api_client.post(REDEEM, {"member": member.pk, "points": 50, "reason": "兑换",
                                        "ref_type": "mall_order", "ref_id": "M1"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["transaction"]["kind"], body["transaction"]["points"], body["balance"]) == (
        "redeem", -50, 50)
    assert (body["transaction"]["ref_type"], body["transaction"]["ref_id"]) == (
        "mall_order", "M1")


def test_redeeming_more_than_the_balance_is_a_409(tenant, api_client, member, funded):
    before = state(tenant)

    response = api_client.post(REDEEM, {"member": member.pk, "points": 101, "reason": "兑换"},
                               format="json")

    assert response.status_code == 409
    assert response.json() == {"code": "insufficient_points",
                               "message": "积分不足：可用 100，需要 101。"}
    assert state(tenant) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"points": 0}, "points"),
    ({"points": -5}, "points"),
    ({"points": "十"}, "points"),
    ({"points": 1.5}, "points"),
    ({"reason": ""}, "reason"),
    ({"colour": "red"}, "colour"),
    ({"ref_type": "order", "ref_id": "1"}, "ref_type"),
    ({"ref_type": "mall_order"}, "ref_id"),
])
def test_bad_input_is_a_400_and_changes_nothing(tenant, api_client, member, funded, body,
                                                 field):
    before = state(tenant)
    for url in (EARN, REDEEM):
        response = api_client.post(url, {"member": member.pk, "points": 10, "reason": "x",
                                          **body}, format="json")
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "validation_error"
        assert field in response.json()["errors"]
    assert state(tenant) == before


def test_unknown_and_other_tenants_members_are_404(tenant, other_tenant, api_client,
                                                   other_api_client, member, funded):
    from scrm.access import ALL_SCOPES, Actor

    stranger = new_member(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))
    before, theirs = state(tenant), state(other_tenant)

    for member_id in (stranger.pk, 999_999):
        for url in (EARN, REDEEM, ADJUST):
            response = api_client.post(url, {"member": member_id, "points": 10, "reason": "x"},
                                       format="json")
            assert (response.status_code, response.json()["code"]) == (404, "not_found")
        for path in ("", "ledger/"):
            assert api_client.get(points_url(member_id, path)).status_code == 404
        assert api_client.post(points_url(member_id, "checkin/"), {},
                               format="json").status_code == 404
    # And the other way round: our member is invisible to the other tenant's key.
    response = other_api_client.post(EARN, {"member": member.pk, "points": 10, "reason": "x"},
                                     format="json")
    assert response.status_code == 404
    assert (state(tenant), state(other_tenant)) == (before, theirs)


def test_an_idempotency_key_replays_and_refuses_another_body(tenant, api_client, member):
    body = {"member": member.pk, "points": 30, "reason": "活动"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "earn-1"}

    first = api_client.post(EARN, body, format="json", **headers)
    again = api_client.post(EARN, body, format="json", **headers)
    other = api_client.post(EARN, {**body, "points": 31}, format="json", **headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    with tenant_scope(tenant):
        from points.models import PointsEntry

        assert list(PointsEntry.objects.values_list("points", "idempotency_key")) == [
            (30, "api:earn-1")]


def test_the_member_view_shows_balance_lots_and_what_expires_soon(api_client, member, actor):
    with tenant_scope(member.tenant_id):
        from points.services import points_earn

        points_earn(actor=actor, member=member, points=40, reason="a", expires_at=days(10))
        points_earn(actor=actor, member=member, points=60, reason="b", expires_at=days(100))
    api_client.post(REDEEM, {"member": member.pk, "points": 10, "reason": "兑换"}, format="json")

    body = api_client.get(points_url(member.pk)).json()

    assert {k: body[k] for k in ("member", "balance", "shortfall", "lifetime_earned",
                                 "value_fen")} == {
        "member": member.pk, "balance": 90, "shortfall": 0, "lifetime_earned": 100,
        "value_fen": 90}
    assert [(lot["earned"], lot["remaining"]) for lot in body["lots"]] == [(40, 30), (60, 60)]
    assert body["expiring"] == [{"expires_at": body["lots"][0]["expires_at"], "points": 30}]
    assert (body["expiring_soon"]["within_days"], body["expiring_soon"]["points"]) == (30, 30)
    assert body["expiring_soon"]["first_expires_at"] == body["lots"][0]["expires_at"]
    later = api_client.get(points_url(member.pk), {"within_days": 365}).json()["expiring"]
    assert [row["points"] for row in later] == [30, 60]


def test_the_ledger_pages_newest_first(api_client, member, django_assert_max_num_queries):
    for n in range(5):
        api_client.post(EARN, {"member": member.pk, "points": n + 1, "reason": f"第{n}次"},
                        format="json")

    first = api_client.get(points_url(member.pk, "ledger/"), {"page_size": 3}).json()
    second = api_client.get(first["next"]).json()

    assert [e["points"] for e in first["results"]] == [5, 4, 3]
    assert [e["points"] for e in second["results"]] == [2, 1]
    assert [e["balance_after"] for e in first["results"] + second["results"]] == [
        15, 10, 6, 3, 1]
    assert second["next"] is None
    with django_assert_max_num_queries(12):
        api_client.get(points_url(member.pk, "ledger/"))


def test_adjusting_needs_its_own_scope_and_is_audited(tenant, member, funded):
    writer = client_for(tenant, scopes=[POINTS_READ, POINTS_WRITE])
    adjuster = client_for(tenant)
    body = {"member": member.pk, "points": -30, "reason": "误发扣回"}

    refused = writer.post(ADJUST, body, format="json")
    done = adjuster.post(ADJUST, body, format="json")

    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert done.status_code == 201, done.json()
    assert (done.json()["transaction"]["kind"], done.json()["balance"]) == ("adjust", 70)
    zero = adjuster.post(ADJUST, {**body, "points": 0}, format="json")
    assert (zero.status_code, zero.json()["errors"]) == (400, {"points": ["不能为 0。"]})
    with tenant_scope(tenant):
        assert AuditEntry.objects.filter(action="points.adjust").count() == 1


def test_reading_scopes_do_not_write(tenant, member, funded):
    reader = client_for(tenant, scopes=[POINTS_READ])

    assert reader.get(points_url(member.pk)).status_code == 200
    for url in (EARN, REDEEM):
        response = reader.post(url, {"member": member.pk, "points": 1, "reason": "x"},
                               format="json")
        assert response.status_code == 403
    assert reader.post(points_url(member.pk, "checkin/"), {}, format="json").status_code == 403
    assert reader.patch(POLICY, {"checkin_points": 9}, format="json").status_code == 403


def test_checking_in_twice_the_same_day(api_client, member):
    first = api_client.post(points_url(member.pk, "checkin/"), {}, format="json")
    again = api_client.post(points_url(member.pk, "checkin/"), {}, format="json")
    odd = api_client.post(points_url(member.pk, "checkin/"), {"day": "2026-01-01"},
                          format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["checkin"]["streak"] == 1
    assert (first.json()["checkin"]["points"], first.json()["balance"]) == (5, 5)
    assert again.json() == first.json()
    assert (odd.status_code, list(odd.json()["errors"])) == (400, ["day"])


def test_the_policy_reads_with_defaults_and_changes_with_validation(tenant, api_client):
    policy = api_client.get(POLICY).json()
    assert policy | {"updated_at": None} == {
        "points_per_yuan": "1.00", "rounding": "floor", "expiry_mode": "year_end",
        "expiry_days": 365, "point_value_fen": 1, "daily_earn_cap": 0, "signup_points": 0,
        "birthday_points": 0, "checkin_points": 5, "checkin_streak_days": 7,
        "checkin_streak_bonus": 20, "review_points": 0, "members_days": [],
        "members_day_multiplier": "1.00", "updated_at": None}

    changed = api_client.patch(POLICY, {"points_per_yuan": "2.5", "members_days": ["8", "11-11"],
                                        "members_day_multiplier": "3"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["points_per_yuan"], changed.json()["members_days"]) == (
        "2.50", ["8", "11-11"])
    for bad in ({"members_days": ["32"]}, {"members_days": ["02-30"]}, {"rounding": "up"},
                {"members_day_multiplier": "0.5"}, {"expiry_days": 0}, {"tiers": []}):
        assert api_client.patch(POLICY, bad, format="json").status_code == 400, bad
    with tenant_scope(tenant):
        stored = PointsPolicy.objects.get()
        assert (str(stored.points_per_yuan), stored.members_days) == ("2.50", ["8", "11-11"])
        audit = AuditEntry.objects.get(action="points.policy_update")
        assert audit.data == {
            "before": {"points_per_yuan": "1.00", "members_days": [],
                       "members_day_multiplier": "1.00"},
            "after": {"points_per_yuan": "2.50", "members_days": ["8", "11-11"],
                      "members_day_multiplier": "3.00"}}


def test_the_liability_counts_outstanding_points_and_their_value(tenant, api_client, actor,
                                                                  member, other_member):
    with tenant_scope(tenant):
        from points.services import points_earn

        policy_get()
        PointsPolicy.objects.update(point_value_fen=2)
        points_earn(actor=actor, member=member, points=100, reason="a", expires_at=days(20))
        points_earn(actor=actor, member=member, points=50, reason="b", expires_at=days(60))
        points_earn(actor=actor, member=other_member, points=30, reason="c",
                    expires_at=days(200))
        program = tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "silver", "name": "银卡", "threshold": 0},
            {"code": "gold", "name": "金卡", "threshold": 10000}])
        member_tier_override(actor=actor, program=program, member=member,
                             level=program.levels.get(code="gold"), reason="测试")

    body = api_client.get(LIABILITY).json()

    assert body | {"as_of": None} == {
        "outstanding_points": 180, "outstanding_value_fen": 360, "point_value_fen": 2,
        "members_with_points": 2, "shortfall_points": 0,
        "expiring_30_days": {"points": 100, "value_fen": 200},
        "expiring_90_days": {"points": 150, "value_fen": 300}, "as_of": None,
        "by_tier": [
            {"level": "gold", "name": "金卡", "members": 1, "points": 150, "value_fen": 300},
            {"level": "silver", "name": "银卡", "members": 0, "points": 0, "value_fen": 0},
            {"level": None, "name": "无等级", "members": 1, "points": 30, "value_fen": 60}]}


def test_guides_see_their_own_customers_points_only(tenant, store, api_client, actor):
    guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    mine = new_member(actor, guide=guide)
    someone_else = new_member(actor)
    client = Client()
    client.force_login(guide.user)

    assert client.get(points_url(mine.pk)).status_code == 200
    assert client.get(points_url(someone_else.pk)).status_code == 404
    assert client.get(LIABILITY).status_code == 403
    response = client.post(EARN, {"member": mine.pk, "points": 5, "reason": "x"},
                           content_type="application/json")
    assert response.status_code == 403


BATCH = "/api/v1/points/batch/"


def test_a_batch_applies_each_operation_on_its_own(tenant, api_client, member, other_member,
                                                   funded):
    operations = [
        {"type": "earn", "member": other_member.pk, "points": 20, "reason": "门店日结",
         "key": "pos-1"},
        {"type": "redeem", "member": member.pk, "points": 500, "reason": "兑换", "key": "pos-2"},
        {"type": "redeem", "member": member.pk, "points": 40, "reason": "兑换", "key": "pos-3"},
        {"type": "earn", "member": 999_999, "points": 5, "reason": "x"},
        {"type": "earn", "member": member.pk, "points": 0, "reason": "x"},
        {"type": "redeem", "member": other_member.pk, "points": 15, "reason": "兑换"},
    ]

    response = api_client.post(BATCH, {"operations": operations}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["applied"], body["replayed"], body["failed"]) == (3, 0, 3)
    summary = [(r["index"], r["status"], r.get("code"), r.get("balance"),
                r.get("transaction", {}).get("points")) for r in body["results"]]
    assert summary == [
        (0, "applied", None, 20, 20),
        (1, "error", "insufficient_points", None, None),
        (2, "applied", None, 60, -40),
        (3, "error", "not_found", None, None),
        (4, "error", "validation_error", None, None),
        (5, "applied", None, 5, -15),
    ]

    again = api_client.post(BATCH, {"operations": operations[:3]}, format="json").json()
    assert [(r["status"], r.get("balance")) for r in again["results"]] == [
        ("replayed", 5), ("error", None), ("replayed", 60)]


def test_batch_entries_read_as_the_single_endpoints_do(tenant, api_client, member, funded):
    from points.api.serializers import PointsEntryOutput, entry_data
    from points.models import PointsEntry

    with tenant_scope(tenant):
        entry = PointsEntry.objects.get()
    assert entry_data(entry) == PointsEntryOutput(entry).data == funded["transaction"]


def test_a_batch_refuses_a_bad_envelope(tenant, api_client, member):
    before = state(tenant)
    for body in ({"operations": []}, {"operations": "x"}, {"ops": []},
                 {"operations": [{}] * 501}):
        response = api_client.post(BATCH, body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert state(tenant) == before
