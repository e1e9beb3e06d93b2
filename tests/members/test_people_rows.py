"""OneID for staged file rows in set-based SQL (the members import's path on PostgreSQL):
rows of one person become one member, known members are found, merged and have their gaps
filled, and resolving the same rows again changes nothing."""

from datetime import date

import pytest
from django.db import transaction

from members.identities import normalize_identity
from members.models import Member, MemberIdentity, MemberMerge, MemberStats, TimelineEvent
from members.services import member_upsert
from members.services.people_rows import PersonRow, people_rows_resolve, people_rows_stage
from scrm import crypto
from scrm.access import ALL_SCOPES, Actor
from scrm.models import OutboxEvent
from scrm.tenancy import tenant_scope
from tags.models import AudienceDirty
from tests.factories import StoreFactory

pytestmark = pytest.mark.postgres

PHONE, OTHER_PHONE = "13800138000", "13900139000"


@pytest.fixture
def actor(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def row(n: int, *ids: tuple[str, str] | tuple[str, str, str], **profile) -> PersonRow:
    return PersonRow(n=n, identities=[normalize_identity(kind, value, *app)
                                      for kind, value, *app in ids], profile=profile)


def resolve(actor, rows: list[PersonRow], skip=()):
    with transaction.atomic():
        return people_rows_resolve(actor=actor, source_channel="import",
                                   staged=people_rows_stage(rows), skip=skip)


def state() -> tuple:
    return (sorted(Member.objects.values_list("pk", "name", "gender", "city", "phone_hash",
                                              "updated_at")),
            sorted(MemberIdentity.objects.values_list("kind", "value", "member_id")),
            TimelineEvent.objects.count(), MemberStats.objects.count())


def test_new_rows_become_members_with_profile_phone_stats_and_events(actor, tenant):
    with tenant_scope(tenant):
        store = StoreFactory(tenant=tenant, code="SH01")
        done = resolve(actor, [
            row(2, ("phone", PHONE), ("wechat_openid", "oA1", "wx1"), name="王芳",
                gender="female", birthday=date(1990, 5, 1), city="上海", store="SH01"),
            row(3, ("external", "P-9", "pos"), name="赵敏")])
        assert (done.created, done.updated) == (2, 0)
        wang = Member.objects.get(pk=done.members[2][0])
        assert (wang.name, wang.gender, wang.birthday, wang.city, wang.store_id,
                wang.phone_masked, wang.source_channel) == (
            "王芳", "female", date(1990, 5, 1), "上海", store.pk, "138****8000", "import")
        assert crypto.decrypt(wang.phone_encrypted) == PHONE
        assert wang.member_no == done.members[2][1]
        assert sorted(wang.identities.values_list("kind", "app_id", "display")) == [
            ("phone", "", "138****8000"), ("wechat_openid", "wx1", "oA1")]
        zhao = Member.objects.get(pk=done.members[3][0])
        assert (zhao.gender, zhao.phone_hash) == ("unknown", "")
        assert MemberStats.objects.count() == 2
        assert sorted(TimelineEvent.objects.values_list("member_id", "kind")) == sorted([
            (wang.pk, "member.created"), (zhao.pk, "member.created")])
        assert sorted(AudienceDirty.objects.values_list("member_no", flat=True)) == sorted(
            [wang.member_no, zhao.member_no])


def test_rows_sharing_an_identity_become_one_member_filled_from_all_of_them(actor, tenant):
    with tenant_scope(tenant):
        done = resolve(actor, [
            row(2, ("phone", PHONE), name="王芳"),
            row(3, ("wechat_openid", "oA1", "wx1"), city="杭州"),  # joined through row 4
            row(4, ("phone", PHONE), ("wechat_openid", "oA1", "wx1"), city="上海",
                gender="female"),
        ])
        assert done.created == 1
        assert len({done.members[n] for n in (2, 3, 4)}) == 1
        member = Member.objects.get()
        assert (member.name, member.city, member.gender) == ("王芳", "杭州", "female")
        assert sorted(member.identities.values_list("kind", flat=True)) == [
            "phone", "wechat_openid"]
        # The openid came with another row than the one that created the member.
        assert list(TimelineEvent.objects.filter(kind="identity.added").values_list(
            "data__kind", flat=True)) == ["wechat_openid"]


def test_a_known_member_gains_missing_ids_and_gaps_but_keeps_what_it_has(actor, tenant):
    with tenant_scope(tenant):
        member, _ = member_upsert(actor=actor, identities=[{"kind": "phone", "value": PHONE}],
                                  profile={"name": "老王"})
        AudienceDirty.objects.all().delete()
        done = resolve(actor, [row(7, ("phone", PHONE), ("wechat_openid", "oA1", "wx1"),
                                   name="新名字", city="杭州", gender="male")])
        assert done.members == {7: (member.pk, member.member_no)}
        assert (done.created, done.updated) == (0, 1)
        member.refresh_from_db()
        assert (member.name, member.city, member.gender) == ("老王", "杭州", "male")
        assert MemberIdentity.objects.filter(member=member, kind="wechat_openid",
                                             value="oA1").exists()
        assert TimelineEvent.objects.filter(member=member, kind="identity.added",
                                            data__kind="wechat_openid").count() == 1
        assert list(AudienceDirty.objects.values_list("member_no", flat=True)) == [
            member.member_no]


def test_ids_pointing_at_two_members_merge_them_and_every_row_finds_the_survivor(actor,
                                                                               tenant):
    with tenant_scope(tenant):
        older, _ = member_upsert(actor=actor, identities=[{"kind": "phone", "value": PHONE}])
        newer, _ = member_upsert(actor=actor, identities=[
            {"kind": "wechat_openid", "app_id": "wx1", "value": "oA1"},
            {"kind": "external", "app_id": "pos", "value": "P-1"}])
        done = resolve(actor, [
            row(2, ("external", "P-1", "pos"), name="王芳"),  # points at the newer one only
            row(3, ("phone", PHONE), ("wechat_openid", "oA1", "wx1")),
        ])
        assert done.members[2][0] == done.members[3][0] == older.pk
        assert MemberMerge.objects.filter(survivor=older, merged=newer).exists()
        older.refresh_from_db()
        assert older.name == "王芳"
        assert sorted(older.identities.values_list("kind", flat=True)) == [
            "external", "phone", "wechat_openid"]


def test_a_row_left_out_neither_lands_nor_joins_two_others(actor, tenant):
    with tenant_scope(tenant):
        done = resolve(actor, [
            row(2, ("phone", PHONE)),
            row(3, ("phone", PHONE), ("wechat_openid", "oA1", "wx1")),
            row(4, ("wechat_openid", "oA1", "wx1")),
        ], skip=[3])
        assert set(done.members) == {2, 4}
        assert done.members[2] != done.members[4]
        assert sorted(MemberIdentity.objects.values_list("kind", "member_id")) == sorted([
            ("phone", done.members[2][0]), ("wechat_openid", done.members[4][0])])


def test_resolving_the_same_rows_again_changes_nothing(actor, tenant):
    rows = [row(n, ("phone", f"1380013{n:04d}"), ("wechat_unionid", f"u{n // 2}"),
                name=f"会员{n}", city="上海", store="SH01") for n in range(2, 22)]
    with tenant_scope(tenant):
        StoreFactory(tenant=tenant, code="SH01")
        first = resolve(actor, rows)
        before = state()
        again = resolve(actor, rows)
        assert (first.created, again.created, again.updated) == (10, 0, 0)
        assert again.members == first.members
        assert state() == before
        assert (len(before[1]), before[2]) == (30, 20)  # ids; created and identity.added


def test_new_members_are_announced_to_webhook_subscribers(actor, tenant, settings):
    from integrations.webhooks.services.endpoints import endpoint_create

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with tenant_scope(tenant):
        endpoint_create(actor=actor, name="ERP", url="http://127.0.0.1:9/hooks",
                        event_types=["member.created"])
        done = resolve(actor, [row(2, ("phone", PHONE)), row(3, ("phone", OTHER_PHONE))])
        assert sorted(OutboxEvent.objects.filter(type="member.created").values_list(
            "data__member_id", "data__source_channel")) == sorted([
            (done.members[2][0], "import"), (done.members[3][0], "import")])


@pytest.mark.django_db(transaction=True)
def test_two_imports_meeting_the_same_new_person_make_one_member(actor, tenant):
    """Two import jobs of one tenant (or an import and a bulk order batch) take turns: the
    second finds the member the first created instead of creating a duplicate."""
    import threading

    from django.db import connection

    barrier, errors, done = threading.Barrier(2), [], []

    def run(n: int):
        try:
            barrier.wait(timeout=10)
            with tenant_scope(tenant):
                done.append(resolve(actor, [row(n, ("phone", PHONE), name="王芳")]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(d.created for d in done) == [0, 1]
    with tenant_scope(tenant):
        assert Member.objects.count() == 1
        assert MemberIdentity.objects.filter(kind="phone").count() == 1
