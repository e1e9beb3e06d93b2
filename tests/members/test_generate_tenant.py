import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q, Sum

from members.generator import orders as orders_module
from members.generator import plan as plan_module
from members.generator import service
from members.identities import mask_phone, normalize_phone
from members.models import (
    IdentityKind,
    Member,
    MemberIdentity,
    MemberStats,
    Order,
    OrderLine,
    Refund,
)
from members.services.numbers import member_numbers_allocate
from members.services.reconcile import member_stats_reconcile
from scrm import crypto
from scrm.models import ApiKey, Role, StaffMembership, Store, Tenant
from scrm.tenancy import tenant_scope

pytestmark = pytest.mark.django_db
COUNTED = Q(status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED])
ROOT = Path(__file__).resolve().parents[2]


def generate(*args: str) -> str:
    out = StringIO()
    call_command("generate_tenant", *args, "-v0", stdout=out)
    return out.getvalue()


def counts(slug: str) -> dict[str, int]:
    with tenant_scope(Tenant.objects.get(slug=slug)):
        return {model.__name__: model.objects.count() for model in (
            Member, MemberIdentity, Order, OrderLine, Refund, MemberStats)}


def sizes(found: dict[str, int]) -> tuple[int, int, int]:
    return found["Member"], found["Order"], found["MemberStats"]


@pytest.fixture
def generated():
    generate("gen", "--members", "200", "--orders", "800", "--seed", "7", "--timeline")
    tenant = Tenant.objects.get(slug="gen")
    with tenant_scope(tenant):
        yield tenant


def test_counts_are_exact_and_every_member_has_an_identity(generated):
    assert Member.objects.count() == 200
    assert Order.objects.count() == 800
    assert Member.objects.annotate(n=Count("identities")).filter(n=0).count() == 0
    assert OrderLine.objects.filter(order__isnull=True).count() == 0
    assert not Order.objects.annotate(n=Count("lines")).filter(n=0).exists()
    assert Store.objects.count() == service.default_store_count(200)
    assert StaffMembership.objects.filter(tenant=generated, role=Role.GUIDE).exists()


def test_member_numbers_are_dense_and_the_sequence_continues_after_them(generated):
    numbers = list(Member.objects.order_by("member_no").values_list("member_no", flat=True))
    assert numbers == list(range(1, 201))
    assert member_numbers_allocate(tenant_id=generated.pk, count=1) == [201]


def test_stats_agree_with_orders(generated):
    totals = {
        row["member_id"]: (row["n"], row["spent"], row["refunded"])
        for row in Order.objects.values("member_id").annotate(
            n=Count("id", filter=COUNTED), spent=Sum(F("amount_fen") - F("refunded_fen")),
            refunded=Sum("refunded_fen"))
    }
    stats = {s.member_id: s for s in MemberStats.objects.all()}
    assert set(stats) == set(Member.objects.values_list("pk", flat=True))
    for member_id, row in stats.items():
        assert (row.order_count, row.total_spent_fen, row.refunded_fen) == totals.get(
            member_id, (0, 0, 0))
    assert member_stats_reconcile() == 0


def test_refunds_match_their_orders(generated):
    refunded = dict(Refund.objects.values("order_id").annotate(total=Sum("amount_fen"))
                    .values_list("order_id", "total"))
    assert refunded
    for order in Order.objects.exclude(refunded_fen=0):
        assert refunded[order.pk] == order.refunded_fen
        expected = "refunded" if order.refunded_fen == order.amount_fen else "partially_refunded"
        assert order.status == expected
    assert not Order.objects.filter(refunded_fen=0).exclude(status="paid").exists()


def test_phones_are_encrypted_and_found_by_their_blind_index(generated):
    members = list(Member.objects.exclude(phone_hash=""))
    assert len(members) > 150
    assert len({member.phone_hash for member in members}) == len(members)
    identities = {i.member_id: i for i in MemberIdentity.objects.filter(kind=IdentityKind.PHONE)}
    for member in members:
        assert not re.search(r"\d{11}", member.phone_encrypted)
        phone = crypto.decrypt(member.phone_encrypted)
        assert normalize_phone(phone) == phone
        assert crypto.blind_index(phone) == member.phone_hash
        assert member.phone_masked == mask_phone(phone)
        identity = identities[member.pk]
        assert (identity.value, identity.display) == (member.phone_hash, member.phone_masked)
        assert crypto.decrypt(identity.value_encrypted) == phone


def test_rerun_for_a_populated_tenant_changes_nothing(generated):
    before = counts("gen")
    output = generate("gen", "--members", "200", "--orders", "800", "--seed", "7")
    assert "nothing to do" in output
    assert counts("gen") == before


def test_rerun_with_other_sizes_refuses_clearly(generated):
    before = counts("gen")
    with pytest.raises(CommandError, match="--members 300 --orders 800.*Use another slug"):
        generate("gen", "--members", "300", "--orders", "800", "--seed", "7")
    assert counts("gen") == before


def test_a_tenant_with_its_own_members_is_left_alone(api_client, tenant):
    order = {"order_no": "P1", "channel": "pos", "paid_at": "2026-11-01T10:00:00+08:00",
             "amount_fen": 12000,
             "buyer": {"identities": [{"kind": "phone", "value": "13800138000"}]},
             "lines": [{"sku": "S1", "product": "口红", "quantity": 1, "price_fen": 12000}]}
    assert api_client.post("/api/v1/orders/", order, format="json").status_code == 201
    with pytest.raises(CommandError, match="the tenant has 1 members and 1 orders"):
        generate("acme", "--members", "200", "--orders", "800")
    with tenant_scope(tenant):
        assert (Member.objects.count(), Order.objects.count(), Store.objects.count()) == (1, 1, 0)


def test_an_interrupted_run_resumes_from_its_last_committed_chunk(monkeypatch):
    for module in (plan_module, service):
        monkeypatch.setattr(module, "MEMBER_CHUNK", 50)
        monkeypatch.setattr(module, "ORDER_CHUNK", 40)
    real = orders_module.orders_generate

    def crash_on_third_chunk(context, chunk):
        if chunk.index == 2:
            raise RuntimeError("power cut")
        return real(context, chunk)

    monkeypatch.setattr(orders_module, "orders_generate", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        generate("gen", "--members", "200", "--orders", "800")
    members, orders, _stats = sizes(counts("gen"))
    assert members == 200
    assert 0 < orders < 800

    monkeypatch.setattr(orders_module, "orders_generate", real)
    assert "resumed" in generate("gen", "--members", "200", "--orders", "800")
    assert sizes(counts("gen")) == (200, 800, 200)
    with tenant_scope(Tenant.objects.get(slug="gen")):
        assert member_stats_reconcile() == 0


def test_seed_demo_creates_every_role_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", "-v0", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/login/" in text
    assert "owner@demo.example" in text
    assert re.search(r"API key \(shown once\): sk_\w+", text)
    tenant = Tenant.objects.get(slug="demo")
    roles = set(StaffMembership.objects.filter(tenant=tenant).values_list("role", flat=True))
    assert roles == set(Role.values)
    for role in Role.values:
        assert StaffMembership.objects.get(tenant=tenant, user__username=f"{role}@demo.example"
                                           ).user.check_password("demo-scrm-2025")
    assert ApiKey.objects.filter(tenant=tenant).count() == 1
    before = counts("demo")
    assert sizes(before) == (2000, 8000, 2000)

    again = StringIO()
    call_command("seed_demo", "-v0", stdout=again)
    assert "already exists; nothing to do" in again.getvalue()
    assert counts("demo") == before
    assert ApiKey.objects.filter(tenant=tenant).count() == 1


def test_seed_demo_runs_on_the_quick_starts_sqlite(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
           "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "true"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], env=env, check=True, cwd=ROOT)
    result = subprocess.run([*manage, "seed_demo", "-v0"], env=env, check=True, cwd=ROOT,
                            capture_output=True, text=True)
    assert "demo tenant 'demo'" in result.stdout
    assert "2,000 members, 8,000 orders" in result.stdout


@pytest.mark.postgres
def test_a_generated_tenant_is_counted_by_the_audience_index_at_once(db):
    from members.generator.service import tenant_generate
    from scrm.models import Tenant
    from scrm.tenancy import tenant_scope
    from tags.audience.expressions import Parser
    from tags.audience.index import audience_count
    from tags.models import AudienceDirty

    tenant_generate(slug="countable", members=120, orders=300, seed=3)
    with tenant_scope(Tenant.objects.get(slug="countable")):
        assert not AudienceDirty.objects.exists()
        everyone = Parser().parse({"not": {"field": "gender", "op": "eq", "value": "nobody"}})
        assert audience_count(everyone) == 120
        buyers = Parser().parse({"field": "order_count", "op": "gte", "value": 1})
        assert audience_count(buyers) == Member.objects.filter(stats__order_count__gte=1).count()
