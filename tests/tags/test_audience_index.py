"""The audience index must agree with plain SQL on any expression, before and after folds,
with members changing in between."""

import datetime as dt
import random

import pytest
from django.utils import timezone

from members.models import Member, MemberStats
from members.services import member_update, order_ingest
from members.services.numbers import member_numbers_reset
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.audience.expressions import Not, Parser
from tags.audience.index import audience_bitmap, audience_fold, audience_rebuild
from tags.audience.sql import to_q
from tags.models import AudienceDirty, MemberTag, Tag, TagGroup
from tags.services.tagging import member_tag_add, member_tag_remove
from tests.factories import StoreFactory

CITIES = ["上海", "杭州", "北京", "成都", "广州"]
MEMBERS = 240


def _seed(tenant, rng):
    stores = [StoreFactory(tenant=tenant) for _ in range(3)]
    group = TagGroup.objects.create(tenant=tenant, name="偏好")
    tags = [Tag.objects.create(tenant=tenant, group=group, name=f"t{i}") for i in range(12)]
    now = timezone.now()
    members = Member.objects.bulk_create([
        Member(tenant=tenant, member_no=no, name=f"m{no}",
               gender=rng.choice(["male", "female", "unknown"]),
               city=rng.choice(CITIES + [""]), province="",
               store=rng.choice(stores + [None]),
               marketing_consent=rng.random() < 0.5,
               birthday=rng.choice([None, dt.date(1970 + rng.randrange(40), rng.randrange(1, 13),
                                                  rng.randrange(1, 28))]))
        for no in range(1, MEMBERS + 1)
    ])
    MemberStats.objects.bulk_create([
        MemberStats(tenant=tenant, member=m, order_count=(count := rng.choice([0, 0, 1, 2, 5])),
                    total_spent_fen=count * rng.randrange(1000, 50000),
                    last_order_at=now - dt.timedelta(days=rng.randrange(400)) if count else None,
                    first_order_at=now - dt.timedelta(days=400 + rng.randrange(300))
                    if count else None)
        for m in members
    ])
    member_numbers_reset(tenant_id=tenant.pk)
    sizes = [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.6, 0.4, 0.15, 0.01, 0.0, 0.25]
    MemberTag.objects.bulk_create([
        MemberTag(tenant=tenant, member=m, tag=tag, source="manual")
        for tag, size in zip(tags, sizes, strict=True) for m in members if rng.random() < size
    ])
    return stores, tags, members


def _leaf(rng, tags, stores):
    kind = rng.randrange(7)
    if kind <= 1:
        return {"tag": rng.choice(tags).pk}
    if kind == 2:
        return {"field": "city", "op": rng.choice(["in", "not_in"]),
                "value": rng.sample(CITIES, rng.randrange(1, 3))}
    if kind == 3:
        op = rng.choice(["gte", "lt", "between", "eq", "ne"])
        return {"field": rng.choice(["total_spent_fen", "order_count"]), "op": op,
                "value": [1000, 60000] if op == "between" else rng.choice([0, 1, 2, 20000])}
    if kind == 4:
        return rng.choice([{"store": rng.choice(stores).code}, {"field": "gender", "op": "eq",
                                                                "value": "female"},
                           {"field": "marketing_consent", "op": "eq", "value": True}])
    if kind == 5:
        field = rng.choice(["age", "last_order_days"])
        top = 100 if field == "age" else 300
        return {"field": field, "op": "between",
                "value": sorted([rng.randrange(0, 60), rng.randrange(0, top)])}
    return {"field": "birth_month", "op": "in", "value": [rng.randrange(1, 13)]}


def _expression(rng, tags, stores, depth=0):
    if depth >= 3 or rng.random() < 0.35:
        return _leaf(rng, tags, stores)
    kind = rng.choice(["all", "any", "not"])
    if kind == "not":
        return {"not": _expression(rng, tags, stores, depth + 1)}
    return {kind: [_expression(rng, tags, stores, depth + 1) for _ in range(rng.randrange(1, 4))]}


def _check_agreement(rng, tags, stores, rounds=60):
    for _ in range(rounds):
        node = Parser(stores=lambda code: next(s.pk for s in stores if s.code == code)).parse(
            _expression(rng, tags, stores))
        index = audience_bitmap(node)
        sql = set(Member.objects.filter(status="active").filter(to_q(node))
                  .values_list("member_no", flat=True))
        assert set(index) == sql, node


@pytest.mark.postgres
def test_index_agrees_with_sql_on_random_expressions_through_changes(tenant):
    rng = random.Random(7)
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    with tenant_scope(tenant):
        stores, tags, members = _seed(tenant, rng)
        audience_rebuild()
        assert AudienceDirty.objects.count() == 0
        _check_agreement(rng, tags, stores)

        for member in rng.sample(members, 30):
            member_tag_add(actor=actor, member=member, tag=rng.choice(tags))
        for row in MemberTag.objects.select_related("member", "tag")[:20]:
            member_tag_remove(actor=actor, member=row.member, tag=row.tag)
        for member in rng.sample(members, 20):
            member_update(actor=actor, member=member, profile={"city": rng.choice(CITIES),
                                                                "gender": "male"})
        for i, member in enumerate(rng.sample(members, 10)):
            order_ingest(actor=actor, data={
                "order_no": f"O{i}", "channel": "pos", "paid_at": timezone.now(),
                "amount_fen": 30000, "buyer": {"identities": [
                    {"kind": "external", "app_id": "crm", "value": f"x{member.member_no}"}]},
                "lines": [{"sku": "S", "product": "P", "quantity": 1, "price_fen": 30000}]})
        assert AudienceDirty.objects.exists()
        _check_agreement(rng, tags, stores)

        audience_fold()
        assert AudienceDirty.objects.count() == 0
        _check_agreement(rng, tags, stores)


@pytest.mark.postgres
def test_new_members_count_before_and_after_the_fold(tenant, api_client):
    with tenant_scope(tenant):
        audience_rebuild()
    api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}], "city": "上海"}, format="json")
    with tenant_scope(tenant):
        node = Parser().parse({"field": "city", "op": "eq", "value": "上海"})
        assert len(audience_bitmap(node)) == 1
        audience_fold()
        assert len(audience_bitmap(node)) == 1
        assert len(audience_bitmap(Not(node))) == 0


def test_rebuild_command_reports_what_it_built(tenant, api_client):
    from io import StringIO

    from django.core.management import call_command

    api_client.post("/api/v1/members/upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}]}, format="json")
    out = StringIO()
    call_command("rebuild_audience", "--tenant", tenant.slug, stdout=out)
    assert out.getvalue().startswith("1 members, 0 tags")
    with tenant_scope(tenant):
        assert not AudienceDirty.objects.exists()
