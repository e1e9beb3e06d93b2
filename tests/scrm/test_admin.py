import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import Member, TimelineEvent
from members.services import member_upsert, order_ingest
from scrm.access import ROLE_SCOPES, Actor
from scrm.models import ApiKey, Role, StaffMembership, Store, Tenant
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory, StoreFactory, TenantFactory, UserFactory

MEMBERS = "/admin/members/member/"
API_KEYS = "/admin/scrm/apikey/"
SECRET_RE = re.compile(r"sk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


def add_member(tenant, name, phone, **profile):
    actor = Actor(tenant=tenant, scopes=ROLE_SCOPES[Role.OWNER])
    with tenant_scope(tenant):
        member, _outcome = member_upsert(
            actor=actor, identities=[{"kind": "phone", "value": phone}],
            profile={"name": name, **profile})
    return member


def sign_in(client, tenant, role=Role.OWNER, **kwargs):
    membership = StaffFactory(tenant=tenant, role=role, **kwargs)
    client.force_login(membership.user)
    return membership


def listed_names(response):
    assert response.status_code == 200
    return [member.name for member in response.context["cl"].result_list]


def change_form_data(response, **changes):
    """What the browser would post back from a change page, with ``changes`` applied."""
    data = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for inline_form in inline.formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                if value is not None:
                    data[inline_form.add_prefix(name)] = value
    return {**data, **changes}


@pytest.fixture
def two_tenants_members(tenant, other_tenant):
    mine = add_member(tenant, "王芳", "13800138000")
    return mine, add_member(other_tenant, "李雷", "13900139000")


def test_owner_lists_only_their_tenants_members(client, tenant, two_tenants_members):
    sign_in(client, tenant)
    response = client.get(MEMBERS)
    assert listed_names(response) == ["王芳"]
    content = response.content.decode()
    assert "李雷" not in content
    assert "138****8000" in content
    assert "13800138000" not in content


def test_another_tenants_member_is_404(client, tenant, two_tenants_members):
    _mine, theirs = two_tenants_members
    sign_in(client, tenant)
    assert client.get(f"{MEMBERS}{theirs.pk}/change/").status_code == 404
    assert client.post(f"{MEMBERS}{theirs.pk}/change/", {"name": "改"}).status_code == 404
    assert client.post(f"{MEMBERS}{theirs.pk}/delete/", {"post": "yes"}).status_code == 404
    with tenant_scope(theirs.tenant_id):
        assert Member.objects.get(pk=theirs.pk).name == "李雷"


def test_guide_sees_only_their_own_customers(client, tenant, store):
    guide = sign_in(client, tenant, role=Role.GUIDE, store=store)
    own = add_member(tenant, "王芳", "13800138000", guide=guide, store=store)
    other = add_member(tenant, "张伟", "13700137000", store=store)
    assert listed_names(client.get(MEMBERS)) == ["王芳"]
    assert client.get(f"{MEMBERS}{own.pk}/change/").status_code == 200
    assert client.get(f"{MEMBERS}{other.pk}/change/").status_code == 404


def test_store_manager_sees_only_their_store(client, tenant, store):
    with tenant_scope(tenant):
        elsewhere = StoreFactory(tenant=tenant, code="BJ001", name="北京店")
    sign_in(client, tenant, role=Role.STORE_MANAGER, store=store)
    add_member(tenant, "王芳", "13800138000", store=store)
    add_member(tenant, "张伟", "13700137000", store=elsewhere)
    assert listed_names(client.get(MEMBERS)) == ["王芳"]


def test_guide_cannot_delete_members(client, tenant, store):
    guide = sign_in(client, tenant, role=Role.GUIDE, store=store)
    own = add_member(tenant, "王芳", "13800138000", guide=guide, store=store)
    assert client.post(f"{MEMBERS}{own.pk}/delete/", {"post": "yes"}).status_code == 403
    with tenant_scope(tenant):
        assert Member.objects.filter(pk=own.pk).exists()


def test_analyst_can_view_but_not_change(client, tenant):
    member = add_member(tenant, "王芳", "13800138000")
    sign_in(client, tenant, role=Role.ANALYST)
    page = client.get(f"{MEMBERS}{member.pk}/change/")
    assert page.status_code == 200
    assert "_save" not in page.content.decode()
    response = client.post(f"{MEMBERS}{member.pk}/change/", {"name": "改名"})
    assert response.status_code == 403
    with tenant_scope(tenant):
        assert Member.objects.get(pk=member.pk).name == "王芳"


def test_owner_change_goes_through_member_update(client, tenant, store):
    member = add_member(tenant, "王芳", "13800138000")
    owner = sign_in(client, tenant)
    page = client.get(f"{MEMBERS}{member.pk}/change/")
    response = client.post(f"{MEMBERS}{member.pk}/change/",
                           change_form_data(page, name="王芳芳", city="杭州", store=store.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(tenant):
        member.refresh_from_db()
        event = TimelineEvent.objects.filter(
            member=member, kind=TimelineEvent.Kind.UPDATED).get()
    assert (member.name, member.city, member.store_id) == ("王芳芳", "杭州", store.pk)
    assert sorted(event.data["changed"]) == ["city", "name", "store"]
    assert event.actor == f"staff:{owner.pk}"


def test_dropdowns_offer_only_the_current_tenants_rows(client, tenant, other_tenant, store):
    with tenant_scope(other_tenant):
        StoreFactory(tenant=other_tenant, code="X001")
    their_guide = StaffFactory(tenant=other_tenant, role=Role.GUIDE)
    my_guide = StaffFactory(tenant=tenant, role=Role.GUIDE)
    member = add_member(tenant, "王芳", "13800138000")
    owner = sign_in(client, tenant)
    form = client.get(f"{MEMBERS}{member.pk}/change/").context["adminform"].form
    with tenant_scope(tenant):
        assert list(form.fields["store"].queryset) == [store]
        assert set(form.fields["guide"].queryset) == {owner, my_guide}
    assert their_guide not in set(form.fields["guide"].queryset)


def test_new_rows_are_stamped_with_the_staff_members_tenant(client, tenant):
    sign_in(client, tenant)
    response = client.post("/admin/scrm/store/add/", {
        "code": "BJ001", "name": "北京国贸店", "region": "华北", "province": "北京",
        "city": "北京", "is_active": "on"})
    assert response.status_code == 302
    with tenant_scope(tenant):
        assert Store.objects.get(code="BJ001").tenant_id == tenant.pk


def test_superuser_sees_every_tenant_with_a_tenant_column(client, two_tenants_members):
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(MEMBERS)
    assert sorted(listed_names(response)) == ["李雷", "王芳"]
    content = response.content.decode()
    assert "column-tenant" in content
    assert "酒厂" in content
    assert "对手" in content


def test_search_by_phone_finds_the_member(client, tenant, two_tenants_members):
    sign_in(client, tenant)
    assert listed_names(client.get(MEMBERS, {"q": "+86 138 0013 8000"})) == ["王芳"]
    assert listed_names(client.get(MEMBERS, {"q": "王"})) == ["王芳"]
    assert listed_names(client.get(MEMBERS, {"q": "13900139000"})) == []


def test_member_list_queries_do_not_grow_with_members(client, tenant, store):
    guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    sign_in(client, tenant)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(MEMBERS).status_code == 200
        return len(queries)

    add_member(tenant, "甲", "13800000001", store=store, guide=guide)
    few = count_queries()
    for number in range(2, 7):
        add_member(tenant, f"乙{number}", f"1380000000{number}", store=store, guide=guide)
    assert count_queries() == few


def test_api_key_secret_is_shown_once_and_only_its_hash_is_kept(client, tenant):
    sign_in(client, tenant)
    response = client.post(f"{API_KEYS}add/", {"name": "POS", "scopes": ["members:read"]},
                           follow=True)
    assert response.status_code == 200
    secrets = set(SECRET_RE.findall(response.content.decode()))
    assert len(secrets) == 1
    secret = secrets.pop()
    api_key = ApiKey.objects.get(name="POS")
    assert api_key.tenant_id == tenant.pk
    assert api_key.scopes == ["members:read"]
    assert api_key.key_hash == ApiKey.hash_secret(secret)
    assert secret not in {api_key.key_hash, api_key.prefix, api_key.name}
    assert not SECRET_RE.search(client.get(API_KEYS).content.decode())
    change_page = client.get(f"{API_KEYS}{api_key.pk}/change/").content.decode()
    assert not SECRET_RE.search(change_page)
    assert api_key.key_hash not in change_page
    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert partner.get("/api/v1/members/").status_code == 200


def test_revoke_action_revokes_the_key(client, tenant):
    sign_in(client, tenant)
    client.post(f"{API_KEYS}add/", {"name": "POS", "scopes": ["members:read"]})
    api_key = ApiKey.objects.get(name="POS")
    response = client.post(API_KEYS, {"action": "revoke", "_selected_action": [api_key.pk]})
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_staff_without_staff_manage_cannot_see_api_keys(client, tenant):
    sign_in(client, tenant, role=Role.BRAND_OPERATOR)
    assert client.get(API_KEYS).status_code == 403


def test_switching_tenant_only_to_tenants_the_user_belongs_to(client, tenant, other_tenant):
    add_member(tenant, "王芳", "13800138000")
    add_member(other_tenant, "李雷", "13900139000")
    stranger = TenantFactory(slug="stranger", name="陌生租户")
    add_member(stranger, "韩梅梅", "13600136000")
    membership = sign_in(client, tenant)
    StaffFactory(tenant=other_tenant, user=membership.user, role=Role.ANALYST)

    page = client.get(MEMBERS)
    assert listed_names(page) == ["王芳"]
    assert 'action="/switch-tenant/"' in page.content.decode()

    response = client.post("/switch-tenant/", {"tenant_id": other_tenant.pk})
    assert response.status_code == 302
    assert client.session["tenant_id"] == other_tenant.pk
    assert listed_names(client.get(MEMBERS)) == ["李雷"]

    assert client.post("/switch-tenant/", {"tenant_id": stranger.pk}).status_code == 404
    assert client.post("/switch-tenant/", {"tenant_id": "x"}).status_code == 404
    assert client.session["tenant_id"] == other_tenant.pk
    assert listed_names(client.get(MEMBERS)) == ["李雷"]


def test_switching_tenant_needs_a_signed_in_user(client, tenant):
    response = client.post("/switch-tenant/", {"tenant_id": tenant.pk})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def _admin_urls():
    for model in admin.site._registry:
        if model._meta.app_label in ("scrm", "members"):
            yield f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


@pytest.fixture
def seeded(tenant, store):
    member = add_member(tenant, "王芳", "13800138000", store=store)
    actor = Actor(tenant=tenant, scopes=ROLE_SCOPES[Role.OWNER])
    with tenant_scope(tenant):
        order_ingest(actor=actor, data={
            "channel": "pos", "order_no": "P1", "store": "SH001", "paid_at": timezone.now(),
            "amount_fen": 1990, "buyer": {"identities": [{"kind": "phone",
                                                          "value": "13800138000"}]},
            "lines": [{"sku": "A1", "product": "酒", "quantity": 1, "price_fen": 1990}]})
    return member


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_every_admin_page_renders(client, tenant, seeded, who):
    if who == "owner":
        sign_in(client, tenant)
    else:
        client.force_login(UserFactory(is_superuser=True))
    assert client.get("/admin/").status_code == 200
    for url in _admin_urls():
        listing = client.get(url)
        assert listing.status_code == 200, url
        objects = list(listing.context["cl"].result_list)
        if objects:
            assert client.get(f"{url}{objects[0].pk}/change/").status_code == 200, url
        add = client.get(f"{url}add/")
        assert add.status_code in (200, 403), url


def test_owner_adds_staff_through_staff_add(client, tenant, other_tenant, store):
    sign_in(client, tenant)
    response = client.post("/admin/scrm/staffmembership/add/", {
        "email": "guide@example.com", "role": Role.GUIDE, "store": store.pk,
        "display_name": "小李"}, follow=True)
    assert response.status_code == 200
    membership = StaffMembership.objects.get(user__username="guide@example.com")
    assert (membership.tenant_id, membership.role, membership.store_id) == (
        tenant.pk, Role.GUIDE, store.pk)
    assert membership.user.is_staff
    assert "初始密码" in response.content.decode()


def test_owner_cannot_assign_another_tenants_store(client, tenant, other_tenant):
    with tenant_scope(other_tenant):
        theirs = StoreFactory(tenant=other_tenant, code="X001")
    sign_in(client, tenant)
    response = client.post("/admin/scrm/staffmembership/add/", {
        "email": "guide@example.com", "role": Role.GUIDE, "store": theirs.pk})
    assert response.status_code == 200
    assert "store" in response.context["adminform"].form.errors
    assert not StaffMembership.objects.filter(user__username="guide@example.com").exists()


def test_superuser_creates_a_tenant_with_its_owner(client, db):
    client.force_login(UserFactory(is_superuser=True))
    response = client.post("/admin/scrm/tenant/add/", {
        "slug": "newbrand", "name": "新品牌", "owner_email": "boss@example.com"})
    assert response.status_code == 302
    created = Tenant.objects.get(slug="newbrand")
    owner = StaffMembership.objects.get(tenant=created)
    assert (owner.role, owner.user.username) == (Role.OWNER, "boss@example.com")


def test_superuser_creates_an_api_key_for_the_chosen_tenant(client, tenant, other_tenant):
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(f"{API_KEYS}add/", {
        "tenant": other_tenant.pk, "name": "ERP", "scopes": ["orders:read"]}, follow=True)
    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="ERP")
    assert api_key.tenant_id == other_tenant.pk
    assert api_key.key_hash == ApiKey.hash_secret(SECRET_RE.search(
        response.content.decode()).group())


def test_superuser_edits_a_member_inside_its_tenant(client, tenant, other_tenant):
    member = add_member(other_tenant, "李雷", "13900139000")
    client.force_login(UserFactory(is_superuser=True))
    page = client.get(f"{MEMBERS}{member.pk}/change/")
    assert "tenant" not in page.context["adminform"].form.fields
    response = client.post(f"{MEMBERS}{member.pk}/change/", change_form_data(page, city="深圳"))
    assert response.status_code == 302
    with tenant_scope(other_tenant):
        member.refresh_from_db()
        event = TimelineEvent.objects.get(member=member, kind=TimelineEvent.Kind.UPDATED)
    assert member.city == "深圳"
    assert (event.tenant_id, event.data["changed"]) == (other_tenant.pk, ["city"])
