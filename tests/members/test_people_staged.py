"""OneID for a staging table in set-based SQL (the follower sync's path on PostgreSQL): the
same outcomes as ``people_resolve``."""

import json

import pytest
from django.db import connection, transaction

from members.models import Member, MemberIdentity, MemberMerge, MemberStats, TimelineEvent
from members.services import member_upsert
from members.services.people_staged import people_stage_create, people_stage_resolve
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import AudienceDirty

pytestmark = pytest.mark.postgres


@pytest.fixture
def actor(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def resolve(actor, rows: list[tuple[str, str | None]]) -> list[tuple[int, int, bool]]:
    """(member id, member no, created) per (openid, unionid)."""
    with transaction.atomic():
        people_stage_create()
        with connection.cursor() as cursor:
            for n, (own, shared) in enumerate(rows):
                cursor.execute("INSERT INTO people_stage (n, own, shared, first_touch) "
                               "VALUES (%s, %s, %s, %s)",
                               [n, own, shared, json.dumps({"appid": "wx1"})])
        people_stage_resolve(actor=actor, source_channel="wechat_oa",
                             own_kind="wechat_openid", own_app="wx1",
                             shared_kind="wechat_unionid")
        with connection.cursor() as cursor:
            cursor.execute("SELECT member_id, member_no, created FROM people_stage ORDER BY n")
            return cursor.fetchall()


def test_new_rows_become_members_with_what_every_member_has(actor, tenant):
    with tenant_scope(tenant):
        (first, second) = resolve(actor, [("o1", "u1"), ("o2", None)])
        assert (first[2], second[2]) == (True, True)
        member = Member.objects.get(pk=first[0])
        assert (member.member_no, member.source_channel, member.first_touch) == (
            first[1], "wechat_oa", {"appid": "wx1"})
        assert sorted(MemberIdentity.objects.filter(member=member).values_list(
            "kind", "app_id", "value")) == [("wechat_openid", "wx1", "o1"),
                                            ("wechat_unionid", "", "u1")]
        assert MemberStats.objects.count() == 2
        assert TimelineEvent.objects.filter(kind="member.created").count() == 2
        assert sorted(AudienceDirty.objects.values_list("member_no", flat=True)) == sorted(
            [first[1], second[1]])


def test_rows_sharing_a_unionid_make_one_member(actor, tenant):
    with tenant_scope(tenant):
        results = resolve(actor, [("o1", "u9"), ("o2", "u9")])
        assert results[0][0] == results[1][0]
        assert [created for _id, _no, created in results] == [True, False]
        assert Member.objects.count() == 1
        assert MemberIdentity.objects.filter(kind="wechat_openid").count() == 2
        assert TimelineEvent.objects.filter(kind="identity.added",
                                            data__display="o2").count() == 1


def test_a_known_member_gains_the_missing_identity(actor, tenant):
    with tenant_scope(tenant):
        member, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_unionid", "value": "u1"}])
        ((member_id, member_no, created),) = resolve(actor, [("o1", "u1")])
        assert (member_id, member_no, created) == (member.pk, member.member_no, False)
        assert MemberIdentity.objects.filter(member=member, kind="wechat_openid",
                                             value="o1").exists()
        assert TimelineEvent.objects.filter(member=member, kind="identity.added",
                                            data__kind="wechat_openid").count() == 1


def test_ids_pointing_at_two_members_merge_them(actor, tenant):
    with tenant_scope(tenant):
        older, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_openid", "app_id": "wx1", "value": "o1"}])
        newer, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_unionid", "value": "u1"}])
        ((member_id, _no, created),) = resolve(actor, [("o1", "u1")])
        assert (member_id, created) == (older.pk, False)
        assert MemberMerge.objects.filter(survivor=older, merged=newer).exists()


def test_resolving_again_changes_nothing(actor, tenant):
    rows = [(f"o{i}", f"u{i // 2}") for i in range(20)]
    with tenant_scope(tenant):
        first = resolve(actor, rows)
        counts = (Member.objects.count(), MemberIdentity.objects.count(),
                  TimelineEvent.objects.count())
        again = resolve(actor, rows)
        assert [row[:2] for row in again] == [row[:2] for row in first]
        assert not any(row[2] for row in again)
        assert counts == (10, 30, 20) == (Member.objects.count(),
                                           MemberIdentity.objects.count(),
                                           TimelineEvent.objects.count())
