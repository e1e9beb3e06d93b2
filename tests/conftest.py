import pytest
from rest_framework.test import APIClient

from scrm.services import api_key_create
from scrm.tenancy import tenant_scope
from tests.factories import StoreFactory, TenantFactory


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_audience_cache():
    """The audience index caches bitmaps by (row id, version).  SQLite reuses the ids of
    rows a rolled-back test wrote, so each test starts with an empty cache."""
    from tags.audience import index

    index._bitmaps.clear()
    index._payloads.clear()


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="酒厂")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="rival", name="对手")


@pytest.fixture
def store(tenant):
    with tenant_scope(tenant):
        return StoreFactory(tenant=tenant, code="SH001", name="上海南京西路店")


def client_for(tenant, scopes=None) -> APIClient:
    _key, secret = api_key_create(tenant=tenant, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api_client(tenant):
    return client_for(tenant)


@pytest.fixture
def other_api_client(other_tenant):
    return client_for(other_tenant)


@pytest.fixture
def in_tenant(tenant):
    """Run the test body inside the tenant (for reading rows back)."""
    with tenant_scope(tenant):
        yield tenant
