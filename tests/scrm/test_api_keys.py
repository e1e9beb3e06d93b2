from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from members.models import Member
from scrm import access, selectors
from scrm.models import ApiKey, Brand, Role, StaffMembership, Tenant
from scrm.services import api_key_create, api_key_revoke, api_keys_delete, tenant_update
from scrm.tenancy import tenant_scope

MEMBERS = "/api/v1/members/"
NEW_MEMBER = {"identities": [{"kind": "phone", "value": "13800138000"}]}


def create_api_key(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_command_prints_a_working_key_on_its_last_line(tenant):
    lines = create_api_key("--tenant", "acme")

    secret = lines[-1]
    assert secret.startswith("sk_")
    assert " " not in secret
    key = ApiKey.objects.get()
    assert (key.tenant_id, key.scopes) == (tenant.pk, list(access.ALL_SCOPES))
    assert secret not in key.key_hash
    response = bearer(secret).post(f"{MEMBERS}upsert/", NEW_MEMBER, format="json")
    assert response.status_code == 201, response.json()
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_command_scopes_limit_the_key(tenant):
    client = bearer(create_api_key("--tenant", "acme", "--scopes", "members:read")[-1])

    assert client.get(MEMBERS).status_code == 200
    refused = client.post(f"{MEMBERS}upsert/", NEW_MEMBER, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert client.get("/api/v1/orders/").status_code == 403
    with tenant_scope(tenant):
        assert not Member.objects.exists()
    assert ApiKey.objects.get().scopes == ["members:read"]


@pytest.mark.parametrize(("args", "message"), [
    (["--tenant", "nope"], "no tenant 'nope'"),
    (["--tenant", "acme", "--scopes", "members:delete"], "unknown scopes: members:delete"),
])
def test_command_refuses_bad_arguments(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        create_api_key(*args)
    assert not ApiKey.objects.exists()


def test_revoked_key_is_401(tenant):
    key, secret = api_key_create(tenant=tenant, name="partner")
    client = bearer(secret)
    assert client.get(MEMBERS).status_code == 200

    api_key_revoke(api_key=key)

    response = client.get(MEMBERS)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_lookup_that_raced_the_revocation_cannot_cache_the_key_again(tenant):
    key, secret = api_key_create(tenant=tenant, name="partner")
    stale = selectors.api_key_active_get(prefix=key.prefix)  # read just before the revocation

    api_key_revoke(api_key=key)
    cache.add(selectors._api_key_cache_key(key.prefix), stale, 60)  # what it stores after

    assert bearer(secret).get(MEMBERS).status_code == 401


def test_deleted_key_is_401_at_once(tenant):
    key, secret = api_key_create(tenant=tenant, name="partner")
    client = bearer(secret)
    assert client.get(MEMBERS).status_code == 200

    api_keys_delete(api_keys=[key])

    assert client.get(MEMBERS).status_code == 401


def test_key_of_a_tenant_switched_off_in_the_admin_is_401_at_once(tenant):
    _key, secret = api_key_create(tenant=tenant, name="partner")
    client = bearer(secret)
    assert client.get(MEMBERS).status_code == 200

    tenant.is_active = False
    tenant_update(tenant=tenant)

    assert client.get(MEMBERS).status_code == 401


def test_key_of_a_deactivated_tenant_is_401(tenant):
    _key, secret = api_key_create(tenant=tenant, name="partner")
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)

    assert bearer(secret).get(MEMBERS).status_code == 401


@pytest.mark.parametrize("header", [
    "Bearer ",
    "Bearer nonsense",
    "Bearer sk_",
    "Bearer sk_abc",
    "Bearer pk_abcd1234_secret",
    "Bearer sk_00000000_wrong-secret",
    "Bearer sk_{prefix}_wrong-secret",
    "Bearer {secret}x",
    "Bearer {secret} {secret}",
    # WSGI hands headers over as latin-1, whatever bytes the client sent.
    "Bearer sk_{prefix}_" + "秘密".encode().decode("latin-1"),
])
def test_malformed_or_wrong_bearer_is_401(tenant, header):
    key, secret = api_key_create(tenant=tenant, name="partner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(prefix=key.prefix, secret=secret))

    response = client.post(f"{MEMBERS}upsert/", NEW_MEMBER, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.json()["message"]
    with tenant_scope(tenant):
        assert not Member.objects.exists()
    key.refresh_from_db()
    assert key.last_used_at is None


@pytest.mark.parametrize("header", ["Token abc", "Basic YTpi", "sk_abc_def"])
def test_other_authorization_schemes_are_not_authenticated(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(MEMBERS)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_no_credentials_is_401(db):
    response = APIClient().get(MEMBERS)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_create_tenant_command_makes_tenant_brand_and_owner(db):
    out = StringIO()

    call_command("create_tenant", "shop", "--name", "店", "--owner-email", "o@x.cn", stdout=out)

    tenant = Tenant.objects.get(slug="shop")
    assert (tenant.name, tenant.is_active) == ("店", True)
    owner = StaffMembership.objects.get(tenant=tenant)
    assert (owner.role, owner.user.username, owner.user.email) == (Role.OWNER, "o@x.cn", "o@x.cn")
    with tenant_scope(tenant):
        assert list(Brand.objects.values_list("name", "code")) == [("店", "shop")]
    lines = out.getvalue().strip().splitlines()
    assert lines[0] == f"tenant shop (id {tenant.pk}) created; owner o@x.cn"
    password = lines[-1].removeprefix("owner password: ")
    assert owner.user.check_password(password)


def test_create_tenant_reuses_an_existing_login(db):
    call_command("create_tenant", "shop", "--name", "店", "--owner-email", "o@x.cn",
                 stdout=StringIO())
    out = StringIO()

    call_command("create_tenant", "shop2", "--name", "二店", "--owner-email", "o@x.cn", stdout=out)

    assert get_user_model().objects.filter(username="o@x.cn").count() == 1
    assert StaffMembership.objects.filter(user__username="o@x.cn").count() == 2
    assert "password" not in out.getvalue()


def test_create_tenant_refuses_a_taken_slug(tenant):
    with pytest.raises(CommandError, match="tenant 'acme' already exists"):
        call_command("create_tenant", "acme", "--name", "店", "--owner-email", "o@x.cn",
                     stdout=StringIO())

    assert Tenant.objects.get(slug="acme").name == "酒厂"
    assert not StaffMembership.objects.exists()
