"""OneID for a page of records at once (followers, WeCom customers)."""

import pytest

from members.identities import normalize_identity
from members.models import Member, MemberIdentity, MemberMerge, MemberStats, TimelineEvent
from members.services import member_upsert
from members.services.people import Record, people_resolve
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import AudienceDirty


def openid(value: str):
    return normalize_identity("wechat_openid", value, "wx1")


def unionid(value: str):
    return normalize_identity("wechat_unionid", value)


@pytest.fixture
def actor(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def test_new_records_become_members_with_their_identities(actor, tenant):
    with tenant_scope(tenant):
        results = people_resolve(actor=actor, source_channel="wechat_oa", records=[
            Record([openid("o1"), unionid("u1")], first_touch={"scene": "ADD_SCENE_QR_CODE"}),
            Record([openid("o2")])])
        assert [r.created for r in results] == [True, True]
        members = {m.pk: m for m in Member.objects.all()}
        assert set(members) == {r.member_id for r in results}
        first = members[results[0].member_id]
        assert (first.source_channel, first.first_touch, first.member_no) == (
            "wechat_oa", {"scene": "ADD_SCENE_QR_CODE"}, results[0].member_no)
        assert sorted(MemberIdentity.objects.filter(member=first).values_list(
            "kind", "value")) == [("wechat_openid", "o1"), ("wechat_unionid", "u1")]
        assert MemberStats.objects.count() == 2
        assert TimelineEvent.objects.filter(kind="member.created").count() == 2
        assert AudienceDirty.objects.count() == 2


def test_known_records_find_their_member_and_gain_new_identities(actor, tenant):
    with tenant_scope(tenant):
        member, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_unionid", "value": "u1"}])
        (result,) = people_resolve(actor=actor, source_channel="wechat_oa",
                                   records=[Record([openid("o1"), unionid("u1")])])
        assert (result.member_id, result.created) == (member.pk, False)
        assert MemberIdentity.objects.filter(member=member, kind="wechat_openid",
                                             value="o1").exists()
        assert TimelineEvent.objects.filter(member=member, kind="identity.added",
                                            data__kind="wechat_openid").count() == 1
        assert Member.objects.count() == 1


def test_records_pointing_at_two_members_merge_them(actor, tenant):
    with tenant_scope(tenant):
        older, _ = member_upsert(actor=actor, identities=[{"kind": "wechat_openid",
                                                           "app_id": "wx1", "value": "o1"}])
        newer, _ = member_upsert(actor=actor, identities=[{"kind": "wechat_unionid",
                                                           "value": "u1"}])
        (result,) = people_resolve(actor=actor, source_channel="wechat_oa",
                                   records=[Record([openid("o1"), unionid("u1")])])
        assert result.member_id == older.pk
        assert MemberMerge.objects.filter(survivor=older, merged=newer).exists()
        assert Member.objects.get(pk=newer.pk).status == "merged"


def test_two_records_sharing_a_unionid_make_one_member(actor, tenant):
    with tenant_scope(tenant):
        results = people_resolve(actor=actor, source_channel="wecom", records=[
            Record([normalize_identity("wecom_external_userid", "wm1", "ww1"), unionid("u9")]),
            Record([normalize_identity("wecom_external_userid", "wm2", "ww1"), unionid("u9")])])
        assert results[0].member_id == results[1].member_id
        assert Member.objects.count() == 1
        assert MemberIdentity.objects.filter(kind="wecom_external_userid").count() == 2


def test_resolving_again_changes_nothing(actor, tenant):
    records = [Record([openid(f"o{i}")]) for i in range(50)]
    with tenant_scope(tenant):
        first = people_resolve(actor=actor, source_channel="wechat_oa", records=records)
        again = people_resolve(actor=actor, source_channel="wechat_oa", records=records)
        assert [r.member_id for r in first] == [r.member_id for r in again]
        assert not any(r.created for r in again)
        assert Member.objects.count() == 50
        assert MemberIdentity.objects.count() == 50


def test_a_new_record_sharing_an_id_with_a_later_known_one_joins_that_member(actor, tenant):
    """Page order must not matter: the first record is new only until the second, of a known
    member, brings their shared unionid; both end up on that member, with every id."""
    with tenant_scope(tenant):
        member, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_openid", "app_id": "wx1", "value": "o2"}])
        first, second = people_resolve(actor=actor, source_channel="wechat_oa", records=[
            Record([openid("o1"), unionid("u1")]), Record([openid("o2"), unionid("u1")])])
        assert (first.member_id, second.member_id) == (member.pk, member.pk)
        assert (first.created, second.created) == (False, False)
        assert Member.objects.count() == 1
        assert sorted(MemberIdentity.objects.filter(member=member).values_list(
            "kind", "value")) == [("wechat_openid", "o1"), ("wechat_openid", "o2"),
                                  ("wechat_unionid", "u1")]
