import csv
import io
from datetime import UTC, datetime

import pytest
from django.core import signing
from django.test import Client

from integrations.transfers.services import exports
from members.models import Order
from members.services import member_upsert
from members.services.orders import order_ingest
from points.services.ledger import points_earn
from scrm.models import AuditEntry, Job
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.transfers.conftest import body

EXPORTS = "/api/v1/exports/"


@pytest.fixture
def people(tenant, operator):
    with tenant_scope(tenant):
        wang, _ = member_upsert(actor=operator, identities=[
            {"kind": "phone", "value": "13800138000"}], profile={"name": "王芳", "city": "上海"})
        zhao, _ = member_upsert(actor=operator, identities=[
            {"kind": "phone", "value": "13800138001"}], profile={"name": "=cmd|calc",
                                                               "city": "杭州"})
        order_ingest(actor=operator, data={
            "order_no": "A1", "channel": "tmall", "paid_at": datetime(2026, 11, 1, 2, tzinfo=UTC),
            "amount_fen": 19900, "buyer": {"identities": [
                {"kind": "phone", "value": "13800138000"}]},
            "lines": [{"sku": "S1", "product": "面霜", "quantity": 1, "price_fen": 19900}]})
        points_earn(actor=operator, member=zhao, points=50, reason="签到")
    return {"wang": wang, "zhao": zhao}


def _export(client, captured, kind: str, **extra) -> dict:
    with captured(execute=True):
        job = body(client.post(EXPORTS, {"kind": kind, **extra}, format="json"), 202)
    return body(client.get(f"{EXPORTS}{job['id']}/"))


def _download(url: str) -> tuple[int, list[list[str]]]:
    response = Client().get(url)  # no session, no API key: the link is the credential
    if response.status_code != 200:
        return response.status_code, []
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    return 200, list(csv.reader(io.StringIO(content)))


def _link(client, job_id: int) -> str:
    return body(client.get(f"{EXPORTS}{job_id}/link/"))["url"]


def test_members_export_masks_phones_unless_the_role_may_see_them(
        tenant, people, django_capture_on_commit_callbacks):
    masked_client = client_for(tenant, scopes=["members:read", "exports:create"])
    full_client = client_for(tenant, scopes=["members:read", "exports:create", "pii:read"])

    masked = _export(masked_client, django_capture_on_commit_callbacks, "members")
    assert (masked["status"], masked["total"], masked["done"]) == ("succeeded", 2, 2)
    status, rows = _download(_link(masked_client, masked["id"]))
    assert status == 200
    assert rows[0] == exports.MEMBER_COLUMNS
    assert [(r[2], r[5], r[6]) for r in rows[1:]] == [
        ("王芳", "上海", "138****8000"), ("'=cmd|calc", "杭州", "138****8001")]

    full = _export(full_client, django_capture_on_commit_callbacks, "members")
    _status, rows = _download(_link(full_client, full["id"]))
    assert [r[6] for r in rows[1:]] == ["13800138000", "13800138001"]

    with tenant_scope(tenant):
        audited = list(AuditEntry.objects.filter(action="export.members").order_by("id")
                       .values_list("target_id", "data"))
    assert audited == [(masked["id"], {"full_phone": False}), (full["id"], {"full_phone": True})]


def test_orders_and_points_ledger_exports(api_client, people, django_capture_on_commit_callbacks):
    orders = _export(api_client, django_capture_on_commit_callbacks, "orders")
    _status, rows = _download(_link(api_client, orders["id"]))
    assert rows[0] == exports.ORDER_COLUMNS
    assert [r[:5] for r in rows[1:]] == [["A1", "tmall", "", "2026-11-01T10:00:00+08:00",
                                          "19900"]]
    ledger = _export(api_client, django_capture_on_commit_callbacks, "points_ledger")
    _status, rows = _download(_link(api_client, ledger["id"]))
    assert rows[0] == exports.LEDGER_COLUMNS
    by_member = {(r[3], r[4], r[5], r[7]) for r in rows[1:]}
    assert (str(people["zhao"].pk), "earn", "50", "签到") in by_member


def test_a_guides_export_holds_only_their_customers(tenant, django_capture_on_commit_callbacks):
    from members.models import Member
    from scrm.access import Actor
    from scrm.models import Role
    from tests.factories import StaffFactory, StoreFactory

    with tenant_scope(tenant):
        store = StoreFactory(tenant=tenant)
        guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
        system = Actor(tenant=tenant, scopes=frozenset({"members:write"}))
        mine, _ = member_upsert(actor=system, identities=[
            {"kind": "phone", "value": "13800138000"}], profile={"name": "我的", "guide": guide})
        member_upsert(actor=system, identities=[{"kind": "phone", "value": "13800138001"}],
                      profile={"name": "别人的"})
        actor = Actor.for_membership(guide)
        with django_capture_on_commit_callbacks(execute=True):
            job = exports.export_create(actor=Actor(
                tenant=tenant, scopes=actor.scopes | {"exports:create"}, membership=guide),
                kind="members")
        job.refresh_from_db()
        assert Member.objects.count() == 2
        handle = exports.export_file(job)
        rows = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))
        handle.close()
    assert [(r[1], r[2]) for r in rows[1:]] == [(str(mine.pk), "我的")]


def test_signed_link_expires_is_not_forgeable_and_does_not_cross_tenants(
        api_client, other_api_client, tenant, other_tenant, people, settings,
        django_capture_on_commit_callbacks):
    done = _export(api_client, django_capture_on_commit_callbacks, "members")
    url = _link(api_client, done["id"])
    assert _download(url)[0] == 200

    token = url.rstrip("/").rsplit("/", 1)[1]
    assert _download(url.replace(token, token[:-3] + "abc"))[0] == 403
    # A token naming the other tenant's job of the same id is only ever signed by us for
    # that tenant: a crafted one does not verify.
    crafted = signing.TimestampSigner(salt="not-ours").sign_object(
        {"job": done["id"], "tenant": other_tenant.pk})
    assert _download(url.replace(token, crafted))[0] == 403
    # The other tenant cannot mint a link for our job, nor read its status.
    assert other_api_client.get(f"{EXPORTS}{done['id']}/link/").status_code == 404
    assert other_api_client.get(f"{EXPORTS}{done['id']}/").status_code == 404

    settings.EXPORT_LINK_MAX_AGE = -1
    assert _download(url)[0] == 410


def test_a_link_whose_file_is_gone_answers_410(api_client, tenant, people, tmp_path,
                                               django_capture_on_commit_callbacks):
    done = _export(api_client, django_capture_on_commit_callbacks, "members")
    url = _link(api_client, done["id"])
    (tmp_path / "exports" / str(tenant.pk) / f"{done['id']}.csv").unlink()
    assert _download(url)[0] == 410


def test_exports_need_the_scope_of_what_they_hold(tenant, people):
    no_export = client_for(tenant, scopes=["members:read", "orders:read"])
    response = no_export.post(EXPORTS, {"kind": "members"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    members_only = client_for(tenant, scopes=["members:read", "exports:create"])
    response = members_only.post(EXPORTS, {"kind": "orders"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    with tenant_scope(tenant):
        assert not Job.objects.exists()
        assert Order.objects.count() == 1


def test_segment_export_goes_through_the_one_export_service(
        api_client, tenant, people, django_capture_on_commit_callbacks):
    segment = body(api_client.post("/api/v1/segments/", {"name": "上海", "expression": {
        "field": "city", "op": "eq", "value": "上海"}}, format="json"), 201)
    with django_capture_on_commit_callbacks(execute=True):
        queued = body(api_client.post(f"/api/v1/segments/{segment['id']}/export/"), 202)
    assert queued["kind"] == "segment_export"
    _status, rows = _download(_link(api_client, queued["id"]))
    assert [r[2] for r in rows[1:]] == ["王芳"]
    with tenant_scope(tenant):
        assert AuditEntry.objects.filter(action="export.segment",
                                         target_id=queued["id"]).exists()
