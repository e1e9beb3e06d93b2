from datetime import UTC, datetime

import pytest

from members.models import Member, MemberIdentity, MemberMerge, MemberStats, Order, TimelineEvent
from members.services import (
    member_merge,
    member_stats_refresh,
    member_upsert,
    order_ingest,
    refund_create,
)
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError


@pytest.fixture
def actor(in_tenant):
    return Actor(tenant=in_tenant, scopes=frozenset(ALL_SCOPES))


def person(actor, phone: str, **profile) -> Member:
    member, _outcome = member_upsert(actor=actor, identities=[{"kind": "phone", "value": phone}],
                                     profile=profile)
    return member


def order(actor, phone: str, order_no: str, amount_fen: int, day: int) -> Order:
    placed, _created = order_ingest(actor=actor, data={
        "order_no": order_no, "channel": "pos", "store": None,
        "paid_at": datetime(2026, 11, day, 2, tzinfo=UTC), "amount_fen": amount_fen,
        "buyer": {"identities": [{"kind": "phone", "value": phone}]},
        "lines": [{"sku": "S1", "product": "口红", "category": "彩妆", "quantity": 1,
                   "price_fen": amount_fen}],
    })
    return placed


def stats(member: Member) -> dict:
    return MemberStats.objects.values(
        "order_count", "total_spent_fen", "refunded_fen", "first_order_at", "last_order_at"
    ).get(member=member)


def test_merge_moves_identities_orders_and_timeline(actor):
    survivor = person(actor, "13800138000", name="王芳")
    loser = person(actor, "13900139000", city="杭州")
    bought = order(actor, "13900139000", "P1", 5000, 3)
    loser_events = set(TimelineEvent.objects.filter(member=loser).values_list("pk", flat=True))

    record = member_merge(actor=actor, survivor=survivor, merged=loser)

    assert set(MemberIdentity.objects.filter(member=survivor).values_list("display", flat=True)
               ) == {"138****8000", "139****9000"}
    assert not MemberIdentity.objects.filter(member=loser).exists()
    assert Order.objects.get(pk=bought.pk).member_id == survivor.pk
    assert loser_events <= set(
        TimelineEvent.objects.filter(member=survivor).values_list("pk", flat=True))
    assert not TimelineEvent.objects.filter(member=loser).exists()
    assert (record.survivor_id, record.merged_id, record.reason, record.actor) == (
        survivor.pk, loser.pk, "manual", "system")
    assert {key: record.moved[key] for key in ("identities", "orders", "timeline")} == {
        "identities": 1, "orders": 1, "timeline": len(loser_events)}
    loser.refresh_from_db()
    survivor.refresh_from_db()
    assert (loser.status, loser.merged_into_id) == ("merged", survivor.pk)
    assert (survivor.name, survivor.city, survivor.phone_masked) == ("王芳", "杭州", "138****8000")
    assert stats(survivor)["order_count"] == 1
    assert stats(loser)["order_count"] == 0
    merged_event = TimelineEvent.objects.get(member=survivor, kind="member.merged")
    assert merged_event.data["merged_id"] == loser.pk


def test_merged_members_are_found_by_their_identities_through_the_survivor(actor):
    survivor = person(actor, "13800138000")
    loser = person(actor, "13900139000")
    member_merge(actor=actor, survivor=survivor, merged=loser)

    found, outcome = member_upsert(actor=actor,
                                   identities=[{"kind": "phone", "value": "13900139000"}])

    assert (found.pk, outcome) == (survivor.pk, "updated")


def test_merge_into_itself_is_refused(actor):
    member = person(actor, "13800138000")

    with pytest.raises(ApplicationError) as error:
        member_merge(actor=actor, survivor=member, merged=member)

    assert error.value.code == "merge_same_member"
    assert not MemberMerge.objects.exists()
    assert Member.objects.get().status == "active"


def test_merge_of_an_already_merged_member_is_refused(actor):
    survivor = person(actor, "13800138000")
    loser = person(actor, "13900139000")
    third = person(actor, "13700137000")
    member_merge(actor=actor, survivor=survivor, merged=loser)

    for pair in ((third, loser), (loser, third)):
        with pytest.raises(ApplicationError) as error:
            member_merge(actor=actor, survivor=pair[0], merged=pair[1])
        assert error.value.code == "already_merged"

    assert MemberMerge.objects.count() == 1
    assert Member.objects.get(pk=third.pk).status == "active"
    assert MemberIdentity.objects.get(display="137****7000").member_id == third.pk


def test_merges_chain_to_the_last_survivor(actor):
    first = person(actor, "13800138000")
    second = person(actor, "13900139000")
    third = person(actor, "13700137000")
    member_merge(actor=actor, survivor=second, merged=first)

    member_merge(actor=actor, survivor=third, merged=second)

    assert dict(Member.objects.values_list("pk", "merged_into_id")) == {
        first.pk: third.pk, second.pk: third.pk, third.pk: None}
    assert set(MemberIdentity.objects.values_list("member_id", flat=True)) == {third.pk}
    assert list(MemberMerge.objects.order_by("pk").values_list("survivor_id", "merged_id")) == [
        (second.pk, first.pk), (third.pk, second.pk)]


def test_upsert_across_members_merges_into_the_oldest(actor):
    oldest = person(actor, "13800138000")
    newer, _outcome = member_upsert(actor=actor, identities=[
        {"kind": "wechat_unionid", "value": "uX1"}])

    found, outcome = member_upsert(actor=actor, identities=[
        {"kind": "wechat_unionid", "value": "uX1"}, {"kind": "phone", "value": "13800138000"}])

    assert (found.pk, outcome) == (oldest.pk, "merged")
    assert MemberMerge.objects.get().reason == "automatic"
    assert Member.objects.get(pk=newer.pk).merged_into_id == oldest.pk


def test_stats_refresh_agrees_with_orders_after_refunds(actor):
    member = person(actor, "13800138000")
    first = order(actor, "13800138000", "P1", 10000, 1)
    second = order(actor, "13800138000", "P2", 6000, 5)
    order(actor, "13800138000", "P3", 3000, 9)
    refund_create(actor=actor, order=second, refund_no="R1", amount_fen=1000)
    refund_create(actor=actor, order=first, refund_no="R2", amount_fen=10000)
    kept = stats(member)
    MemberStats.objects.filter(member=member).update(order_count=99, total_spent_fen=1)

    assert member_stats_refresh(member_ids=[member.pk]) == 1

    assert stats(member) == kept == {
        "order_count": 2, "total_spent_fen": 8000, "refunded_fen": 11000,
        "first_order_at": datetime(2026, 11, 5, 2, tzinfo=UTC),
        "last_order_at": datetime(2026, 11, 9, 2, tzinfo=UTC),
    }


def test_stats_refresh_of_a_member_without_orders_is_zero(actor):
    member = person(actor, "13800138000")

    member_stats_refresh(member_ids=[member.pk])

    assert stats(member) == {"order_count": 0, "total_spent_fen": 0, "refunded_fen": 0,
                             "first_order_at": None, "last_order_at": None}


def test_refund_is_idempotent_and_bounded(actor):
    placed = order(actor, "13800138000", "P1", 10000, 1)

    refund, created = refund_create(actor=actor, order=placed, refund_no="R1", amount_fen=4000)
    again, created_again = refund_create(actor=actor, order=placed, refund_no="R1",
                                         amount_fen=4000)
    with pytest.raises(ApplicationError) as error:
        refund_create(actor=actor, order=placed, refund_no="R2", amount_fen=6001)

    assert (created, created_again, again.pk) == (True, False, refund.pk)
    assert error.value.code == "refund_exceeds_paid"
    placed.refresh_from_db()
    assert (placed.refunded_fen, placed.status) == (4000, "partially_refunded")
