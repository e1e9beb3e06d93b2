"""The audit log: every audited action leaves exactly one entry saying who did what to which
object and when; PostgreSQL refuses to change or delete entries; only owners search it."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from members.services import member_merge, member_upsert
from points.services.ledger import points_adjust
from scrm import services
from scrm.access import ALL_SCOPES, Actor
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope, unscoped_access
from tags.models import Segment, TagGroup
from tests.conftest import client_for
from tests.factories import StaffFactory, StoreFactory, UserFactory

AUDIT = "/api/v1/audit/"


@pytest.fixture
def owner(tenant):
    with tenant_scope(tenant):
        return StaffFactory(tenant=tenant, role=Role.OWNER, display_name="老板",
                            user=UserFactory(username="boss@example.com"))


@pytest.fixture
def actor(owner):
    return Actor.for_membership(owner)


@pytest.fixture
def member(tenant, actor):
    with tenant_scope(tenant):
        return member_upsert(actor=actor, identities=[{"kind": "phone", "value": "13800138000"}],
                             profile={"name": "王芳"})[0]


def entries(tenant, action: str | None = None) -> list[AuditEntry]:
    with tenant_scope(tenant):
        queryset = AuditEntry.objects.order_by("pk")
        return list(queryset.filter(action=action) if action else queryset)


def only_entry(tenant, action: str) -> AuditEntry:
    found = entries(tenant, action)
    assert len(found) == 1, [(e.action, e.actor) for e in entries(tenant)]
    return found[0]


def test_a_dashboard_sign_in_and_sign_out_are_recorded(owner, tenant):
    client = Client()
    response = client.post("/login/", {"username": "boss@example.com",
                                       "password": "pw-for-tests"}, REMOTE_ADDR="10.0.0.8")
    assert response.status_code == 302
    login = only_entry(tenant, "auth.login")
    assert (login.actor, login.target_type, login.target_id) == (
        f"staff:{owner.pk}", "staffmembership", owner.pk)
    assert login.data == {"via": "web"}
    assert login.ip == "10.0.0.8"
    assert abs((timezone.now() - login.created_at).total_seconds()) < 60
    client.post("/logout/")
    assert only_entry(tenant, "auth.logout").actor == f"staff:{owner.pk}"


def test_a_failed_sign_in_is_recorded_in_the_logins_tenant(owner, tenant, other_tenant):
    response = Client().post("/admin/login/", {"username": "boss@example.com",
                                               "password": "wrong"})
    assert response.status_code == 200
    failed = only_entry(tenant, "auth.login_failed")
    assert failed.actor == "anonymous"
    assert failed.data == {"via": "admin", "username": "boss@example.com"}
    assert entries(tenant, "auth.login") == []
    assert entries(other_tenant) == []


def test_an_admin_sign_in_says_so(owner, tenant):
    Client().post("/admin/login/?next=/admin/", {"username": "boss@example.com",
                                                 "password": "pw-for-tests"})
    assert only_entry(tenant, "auth.login").data == {"via": "admin"}


def test_api_key_creation_and_revocation_are_recorded(tenant, actor):
    api_key, _secret = services.api_key_create(tenant=tenant, name="POS", actor=actor)
    services.api_key_revoke(api_key=api_key, actor=actor)
    services.api_key_revoke(api_key=api_key, actor=actor)  # again: nothing more happens
    created = only_entry(tenant, "api_key.created")
    revoked = only_entry(tenant, "api_key.revoked")
    for entry in (created, revoked):
        assert (entry.actor, entry.target_type, entry.target_id) == (
            actor.label, "apikey", api_key.pk)
        assert entry.data == {"name": "POS", "prefix": api_key.prefix}


def test_staff_added_role_changed_and_removed_are_recorded(tenant, actor):
    membership, _password = services.staff_add(tenant=tenant, email="guide@example.com",
                                               role=Role.ANALYST, actor=actor)
    services.staff_update(tenant=tenant, membership=membership, actor=actor,
                          role=Role.CUSTOMER_SERVICE)
    services.staff_update(tenant=tenant, membership=membership, actor=actor, is_active=False)
    assert only_entry(tenant, "staff.added").data == {"email": "guide@example.com",
                                                      "role": "analyst"}
    assert only_entry(tenant, "staff.role_changed").data == {
        "role": ["analyst", "customer_service"]}
    removed = only_entry(tenant, "staff.removed")
    assert (removed.actor, removed.target_id) == (actor.label, membership.pk)
    assert removed.data == {"is_active": [True, False]}


def test_role_changes_on_the_staff_page_are_recorded(tenant, owner):
    with tenant_scope(tenant):
        store = StoreFactory(tenant=tenant)
        guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    client = Client()
    client.force_login(owner.user)
    response = client.post(f"/settings/staff/{guide.pk}/", {
        "role": Role.STORE_MANAGER, "store": str(store.pk), "display_name": guide.display_name,
        "is_active": "on"})
    assert response.status_code == 302
    entry = only_entry(tenant, "staff.role_changed")
    assert (entry.actor, entry.target_id, entry.data["role"]) == (
        f"staff:{owner.pk}", guide.pk, ["guide", "store_manager"])


def test_a_phone_reveal_is_recorded_from_the_api_and_the_dashboard(tenant, owner, member):
    api = client_for(tenant, scopes=["members:read", "pii:read"])
    assert api.get(f"/api/v1/members/{member.pk}/phone/").json() == {"phone": "13800138000"}
    page = Client()
    page.force_login(owner.user)
    assert b"13800138000" in page.post(f"/members/{member.pk}/phone/").content
    viewed = entries(tenant, "member.phone_viewed")
    assert [(e.actor.split(":")[0], e.target_type, e.target_id) for e in viewed] == [
        ("api_key", "member", member.pk), ("staff", "member", member.pk)]


def test_manual_and_automatic_merges_are_recorded(tenant, actor, member):
    with tenant_scope(tenant):
        other = member_upsert(actor=actor, identities=[{"kind": "wechat_unionid",
                                                        "value": "u1"}])[0]
        third = member_upsert(actor=actor, identities=[{"kind": "email",
                                                        "value": "a@example.com"}])[0]
        member_merge(actor=actor, survivor=member, merged=other)
        member_upsert(actor=actor, identities=[{"kind": "phone", "value": "13800138000"},
                                               {"kind": "email", "value": "a@example.com"}])
    merges = entries(tenant, "member.merged")
    assert [(e.target_id, e.data["merged_id"], e.data["reason"]) for e in merges] == [
        (member.pk, other.pk, "manual"), (member.pk, third.pk, "automatic")]


def test_a_manual_points_adjustment_is_recorded(tenant, actor, member):
    with tenant_scope(tenant):
        points_adjust(actor=actor, member=member, points=50, reason="客诉补偿")
    entry = only_entry(tenant, "points.adjust")
    assert entry.actor == actor.label
    assert (entry.data["member_id"], entry.data["points"], entry.data["reason"]) == (
        member.pk, 50, "客诉补偿")


def test_deleting_segments_and_tag_groups_is_recorded(tenant, actor):
    api = client_for(tenant)
    segment = api.post("/api/v1/segments/", {"name": "上海", "expression": {
        "field": "city", "op": "eq", "value": "上海"}}, format="json").json()
    group = api.post("/api/v1/tag-groups/", {"name": "兴趣"}, format="json").json()
    assert api.delete(f"/api/v1/segments/{segment['id']}/").status_code == 204
    assert api.delete(f"/api/v1/tag-groups/{group['id']}/").status_code == 204
    assert only_entry(tenant, "segment.deleted").target_id == segment["id"]
    assert only_entry(tenant, "tag_group.deleted").data == {"name": "兴趣"}
    with tenant_scope(tenant):
        assert not Segment.objects.exists()
        assert not TagGroup.objects.exists()


def test_deleting_in_the_admin_is_recorded(tenant, owner):
    with tenant_scope(tenant):
        store = StoreFactory(tenant=tenant, code="GZ9", name="广州店")
    client = Client()
    client.force_login(owner.user)
    response = client.post(f"/admin/scrm/store/{store.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entry = only_entry(tenant, "admin.deleted")
    assert (entry.actor, entry.target_type, entry.target_id) == (
        f"staff:{owner.pk}", "store", store.pk)


@pytest.mark.postgres
def test_postgresql_refuses_to_change_or_delete_entries(tenant, actor, member):
    services.api_key_create(tenant=tenant, name="x", actor=actor)
    with tenant_scope(tenant):
        entry = AuditEntry.objects.get(action="api_key.created")
        for statement in (AuditEntry.objects.filter(pk=entry.pk).update,
                          AuditEntry.objects.filter(pk=entry.pk).delete):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                statement(**({"action": "forged"} if statement.__name__ == "update" else {}))
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("DELETE FROM scrm_auditentry")
        assert AuditEntry.objects.get(pk=entry.pk).action == "api_key.created"


@pytest.mark.postgres
def test_deleting_a_tenant_takes_its_audit_log_with_it(tenant, other_tenant, actor):
    services.api_key_create(tenant=tenant, name="x", actor=actor)
    other_actor = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    services.api_key_create(tenant=other_tenant, name="y", actor=other_actor)
    tenant_id = tenant.pk
    with unscoped_access("the platform deletes a tenant"):
        services.tenants_delete(tenants=[tenant])
        assert AuditEntry.objects.unscoped().filter(tenant_id=tenant_id).count() == 0
    assert len(entries(other_tenant)) == 1


def test_the_admin_shows_entries_read_only(tenant, owner, actor):
    services.api_key_create(tenant=tenant, name="POS", actor=actor)
    entry = only_entry(tenant, "api_key.created")
    client = Client()
    client.force_login(owner.user)
    assert client.get("/admin/scrm/auditentry/").status_code == 200
    assert client.get(f"/admin/scrm/auditentry/{entry.pk}/change/").status_code == 200
    response = client.post(f"/admin/scrm/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert client.get("/admin/scrm/auditentry/add/").status_code == 403
    assert entries(tenant, "api_key.created") == [entry]
