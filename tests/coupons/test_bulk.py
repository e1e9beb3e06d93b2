"""Bulk issue for campaigns: stock taken once a chunk and never oversold, the per-member
limit and tier restriction applied set-based, one signal per chunk, and a chunk run again
(after a crash, or the whole run twice) issues nothing twice."""

import pytest

from campaigns.coupons import signals
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services import BulkChunk, coupon_template_save, coupons_issue_bulk
from members.models import Member, TimelineEvent
from members.services.numbers import member_numbers_allocate
from points.services.growth import member_tier_override
from points.services.tiers import tier_program_save
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import coupon_state, issue, template_create
from tests.points.conftest import new_member

pytestmark = pytest.mark.postgres  # COPY; SQLite takes the portable path in small chunks

MEMBERS = 20_000
CHUNK = 5_000


def members_make(tenant, count: int) -> list[int]:
    with tenant_scope(tenant):
        numbers = member_numbers_allocate(tenant_id=tenant.pk, count=count)
        members = Member.objects.bulk_create(
            [Member(tenant=tenant, member_no=no) for no in numbers], batch_size=5000)
    return [member.pk for member in members]


def bulk(actor, template, member_ids, **options) -> int:
    with tenant_scope(actor.tenant):
        return coupons_issue_bulk(actor=actor, template=template, member_ids=member_ids,
                                  key_prefix=options.pop("key_prefix", "campaign:9"),
                                  source="campaign", ref="9", chunk_size=CHUNK, **options)


@pytest.fixture
def issued_signals():
    sent = []

    def receiver(sender, tenant_id, coupon_ids, **kwargs):
        sent.append(coupon_ids)

    signals.coupon_issued.connect(receiver)
    yield sent
    signals.coupon_issued.disconnect(receiver)


def test_20k_members_get_what_the_stock_and_their_limit_allow(
        tenant, other_tenant, actor, issued_signals, django_capture_on_commit_callbacks):
    template = template_create(actor, total_stock=15_000, per_member_limit=1)
    ids = members_make(tenant, MEMBERS)
    holders = ids[::40]  # 500 members have theirs already
    for member_id in holders:
        issue(actor, template, Member(pk=member_id, tenant_id=tenant.pk, status="active"))
    stranger = members_make(other_tenant, 1)[0]
    chunks: list[BulkChunk] = []

    with django_capture_on_commit_callbacks(execute=True):
        issued = bulk(actor, template, [*ids, ids[1], stranger, 10**12],
                      on_chunk=chunks.append)

    eligible = [member_id for member_id in ids if member_id not in set(holders)]
    assert issued == 14_500
    with tenant_scope(tenant):
        coupons = Coupon.objects.filter(idempotency_key__startswith="campaign:9:")
        assert sorted(coupons.values_list("member_id", flat=True)) == eligible[:14_500]
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 15_000
        assert set(coupons.values_list("source", "ref", "status")) == {
            ("campaign", "9", "issued")}
        assert Coupon.objects.values("code").distinct().count() == 15_000
        events = TimelineEvent.objects.filter(kind="coupon.issued").count()
        campaign_ids = sorted(coupons.values_list("pk", flat=True))
    assert events == 15_000
    assert [(c.members, c.issued, c.out_of_stock) for c in chunks] == [
        (5000, 4875, 0), (5000, 4875, 0), (5000, 4750, 125)]
    assert sum(c.skipped for c in chunks) == 375
    assert [len(ids) for ids in issued_signals] == [4875, 4875, 4750]
    assert sorted(id_ for sent in issued_signals for id_ in sent) == campaign_ids


def test_running_it_again_issues_nothing_twice(tenant, actor):
    template = template_create(actor, per_member_limit=0)
    ids = members_make(tenant, 12_000)
    assert bulk(actor, template, ids) == 12_000
    before = coupon_state(tenant)

    assert bulk(actor, template, ids) == 0

    assert coupon_state(tenant) == before


def test_a_run_that_crashed_midway_resumes_where_it_stopped(tenant, actor):
    template = template_create(actor, total_stock=11_000, per_member_limit=0)
    ids = members_make(tenant, 12_000)

    def crash_on_second(chunk: BulkChunk) -> None:
        if crash_on_second.seen:
            raise RuntimeError("worker lost")
        crash_on_second.seen = True

    crash_on_second.seen = False
    with pytest.raises(RuntimeError):
        bulk(actor, template, ids, on_chunk=crash_on_second)
    with tenant_scope(tenant):
        assert (Coupon.objects.count(), CouponTemplate.objects.get().issued_count) == (
            5000, 5000)  # the first chunk committed; the second rolled back whole

    assert bulk(actor, template, ids) == 6000

    with tenant_scope(tenant):
        assert sorted(Coupon.objects.values_list("member_id", flat=True)) == ids[:11_000]
        assert CouponTemplate.objects.get().issued_count == 11_000


def test_a_tier_restricted_template_goes_to_its_levels_only(tenant, actor):
    gold, silver, none = (new_member(actor) for _n in range(3))
    with tenant_scope(tenant):
        program = tier_program_save(actor=actor, changes={"name": "会员"}, levels=[
            {"code": "silver", "name": "银卡", "threshold": 0},
            {"code": "gold", "name": "金卡", "threshold": 1000}])
        for member, code in ((gold, "gold"), (silver, "silver")):
            member_tier_override(actor=actor, program=program, member=member,
                                 level=program.levels.get(code=code), reason="测试")
    template = template_create(actor, allowed_tiers=["gold"])

    assert bulk(actor, template, [gold.pk, silver.pk, none.pk]) == 1

    with tenant_scope(tenant):
        assert list(Coupon.objects.values_list("member_id", flat=True)) == [gold.pk]


def test_an_inactive_template_is_refused_before_anything_is_issued(tenant, actor):
    template = template_create(actor)
    with tenant_scope(tenant):
        template = coupon_template_save(actor=actor, template=template,
                                        changes={"is_active": False})
    ids = members_make(tenant, 10)
    before = coupon_state(tenant)

    with pytest.raises(ApplicationError) as refused:
        bulk(actor, template, ids)

    assert (refused.value.status_code, refused.value.code) == (409, "template_inactive")
    assert coupon_state(tenant) == before


def test_another_tenant_s_members_are_never_issued(tenant, other_tenant, actor):
    theirs = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    template = template_create(actor)
    stranger = new_member(theirs)

    assert bulk(actor, template, [stranger.pk]) == 0

    with tenant_scope(other_tenant):
        assert not Coupon.objects.exists()
    with tenant_scope(tenant):
        assert not Coupon.objects.exists()


def test_a_taken_code_is_drawn_again_for_the_chunk(tenant, actor, member, monkeypatch):
    template = template_create(actor, per_member_limit=0)
    taken = issue(actor, template, member).code
    ids = members_make(tenant, 3)
    draws = iter([[taken, "SECOND234567", "THIRD2345678"],
                  ["FRESH2345678", "FRESH3456789", "FRESH4567892"]])
    monkeypatch.setattr("campaigns.coupons.services.bulk.codes_generate",
                        lambda count: next(draws))

    assert bulk(actor, template, ids) == 3

    with tenant_scope(tenant):
        assert sorted(Coupon.objects.filter(member_id__in=ids).values_list("code", flat=True)
                      ) == ["FRESH2345678", "FRESH3456789", "FRESH4567892"]
        assert CouponTemplate.objects.get(pk=template.pk).issued_count == 4
