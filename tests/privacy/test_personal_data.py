"""Export of everything held about one member (PIPL access right): the member's own data in
full, from every app, and nothing of anyone else; owners only; audited."""

import json

from django.test import Client

from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.privacy.conftest import PHONE


def export_url(member) -> str:
    return f"/api/v1/members/{member.pk}/personal-data/"


def test_the_export_holds_the_members_data_from_every_app(owner_api, wang, li):
    response = owner_api.get(export_url(wang))
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["member_id"] == wang.pk
    assert data["profile"]["name"] == "王芳"
    assert data["profile"]["phone"] == PHONE  # in full: it is the person's own copy
    assert data["profile"]["birthday"] == "1990-01-02"
    assert {(row["kind"], row["value"]) for row in data["identities"]} == {
        ("phone", PHONE), ("wechat_openid", f"o{PHONE}")}
    assert [order["order_no"] for order in data["orders"]] == ["A1"]
    assert data["orders"][0]["lines"][0]["product"] == "精华液"
    assert sum(row["points"] for row in data["points"]["ledger"]) >= 300
    assert all(row["member_id"] == wang.pk for row in data["points"]["ledger"])
    assert [tag["tag_name"] for tag in data["tags"]] == ["护肤达人"]
    assert len(data["coupons"]["coupons"]) == 1
    assert [note["text"] for note in data["notes"]] == ["王芳偏好清爽型"]
    assert [(row["purpose"], row["granted"]) for row in data["consents"]] == [
        ("marketing", True)]
    assert {event["kind"] for event in data["timeline"]} >= {"member.created", "order.paid"}
    for section in ("tiers", "campaigns", "rfm", "referrals", "wechat"):
        assert section in data


def test_the_export_holds_nothing_of_other_members(owner_api, wang, li):
    text = json.dumps(owner_api.get(export_url(wang)).json(), ensure_ascii=False)
    assert "李娜" not in text
    assert "13900139000" not in text
    assert "B1" not in text
    assert f'"member_id": {li.pk}' not in text


def test_each_export_is_audited(owner_api, wang, tenant):
    owner_api.get(export_url(wang))
    with tenant_scope(tenant):
        entry = AuditEntry.objects.get(action="member.personal_data_exported")
    assert (entry.target_type, entry.target_id) == ("member", wang.pk)
    assert entry.actor.startswith("api_key:")
    assert "orders" in entry.data["sections"]


def test_only_owners_may_export(tenant, wang):
    response = client_for(tenant).get(export_url(wang))  # every scope but the owners'
    assert response.status_code == 403
    with tenant_scope(tenant):
        service = StaffFactory(tenant=tenant, role=Role.CUSTOMER_SERVICE)
        assert not AuditEntry.objects.filter(action="member.personal_data_exported").exists()
    page = Client()
    page.force_login(service.user)
    assert page.get(f"/members/{wang.pk}/personal-data/").status_code == 403
    assert "导出该会员的全部个人信息" not in page.get(f"/members/{wang.pk}/").content.decode()


def test_the_member_page_offers_owners_the_download(owner, wang):
    client = Client()
    client.force_login(owner.user)
    assert "导出该会员的全部个人信息" in client.get(f"/members/{wang.pk}/").content.decode()
    response = client.get(f"/members/{wang.pk}/personal-data/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert json.loads(response.content)["profile"]["phone"] == PHONE


def test_other_tenants_cannot_export(other_tenant, wang):
    client = client_for(other_tenant, scopes=["privacy:manage"])
    assert client.get(export_url(wang)).status_code == 404
