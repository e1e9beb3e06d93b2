"""Searching the audit log: owners only, filters by action, actor, target and time, cursor
pages, and never another tenant's entries."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scrm.audit import audit_write
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.factories import StaffFactory

AUDIT = "/api/v1/audit/"


@pytest.fixture
def auditor(tenant):
    return client_for(tenant, scopes=["audit:read"])  # its creation is the first entry


@pytest.fixture
def other_auditor(other_tenant):
    return client_for(other_tenant, scopes=["audit:read"])


@pytest.fixture
def log(tenant, other_tenant, auditor, other_auditor):
    """Five more entries of ours, one more of theirs."""
    rows = [("staff:1", "member.phone_viewed", "member", 7),
            ("staff:1", "member.erased", "member", 8),
            ("api_key:ab12", "api_key.created", "apikey", 3),
            ("staff:2", "auth.login", "staffmembership", 2),
            ("staff:2", "auth.login_failed", "staffmembership", 2)]
    for actor, action, target_type, target_id in rows:
        audit_write(tenant_id=tenant.pk, actor_label=actor, action=action,
                    target_type=target_type, target_id=target_id)
    audit_write(tenant_id=other_tenant.pk, actor_label="staff:9", action="member.erased",
                target_type="member", target_id=99)


def actions(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["action"] for row in response.json()["results"]]


def test_owners_search_by_action_actor_and_target(auditor, log):
    client = auditor
    assert actions(client.get(AUDIT)) == [
        "auth.login_failed", "auth.login", "api_key.created", "member.erased",
        "member.phone_viewed", "api_key.created"]
    assert actions(client.get(AUDIT, {"action": "member.erased"})) == ["member.erased"]
    assert actions(client.get(AUDIT, {"action": "auth."})) == ["auth.login_failed",
                                                               "auth.login"]
    assert actions(client.get(AUDIT, {"actor": "staff:1"})) == ["member.erased",
                                                               "member.phone_viewed"]
    assert actions(client.get(AUDIT, {"target_type": "member", "target_id": 7})) == [
        "member.phone_viewed"]


def test_search_by_time_range(auditor, log):
    client = auditor
    now = timezone.now()
    assert len(actions(client.get(AUDIT, {"since": (now - timedelta(hours=1)).isoformat()}))) \
        == 6
    assert actions(client.get(AUDIT, {"until": (now - timedelta(hours=1)).isoformat()})) == []
    refused = client.get(AUDIT, {"since": "yesterday"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "validation_error"


def test_pages_follow_the_cursor(tenant, auditor, log):
    client = auditor
    first = client.get(AUDIT, {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    seen = [row["id"] for page in (first, second, third) for row in page["results"]]
    with tenant_scope(tenant):
        assert seen == list(AuditEntry.objects.order_by("-id").values_list("id", flat=True))
    assert third["next"] is None


def test_only_owners_may_search(tenant, log):
    response = client_for(tenant).get(AUDIT)  # a key with every ordinary scope
    assert response.status_code == 403
    with tenant_scope(tenant):
        operator = StaffFactory(tenant=tenant, role=Role.BRAND_OPERATOR)
        owner = StaffFactory(tenant=tenant, role=Role.OWNER)
    page = Client()
    page.force_login(operator.user)
    assert page.get(AUDIT).status_code == 403
    assert page.get("/settings/audit/").status_code == 403
    page.force_login(owner.user)
    assert page.get(AUDIT).status_code == 200


def test_other_tenants_entries_never_show(other_auditor, log):
    assert actions(other_auditor.get(AUDIT)) == ["member.erased", "api_key.created"]
    assert other_auditor.get(AUDIT).json()["results"][0]["target_id"] == 99


def test_the_dashboard_page_lists_and_filters(tenant, log):
    with tenant_scope(tenant):
        owner = StaffFactory(tenant=tenant, role=Role.OWNER)
    client = Client()
    client.force_login(owner.user)
    page = client.get("/settings/audit/", {"action": "member.erased"}).content.decode()
    assert "member.erased" in page
    assert "member.phone_viewed" not in page
    assert "审计日志" in client.get("/dashboard/").content.decode()
