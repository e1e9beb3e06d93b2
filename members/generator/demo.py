"""The quick start's demo tenant: a login for every role, a few stores, a couple of thousand
members with two years of orders, and an API key."""

from dataclasses import dataclass

from django.db import transaction

from members.generator.service import stores_and_staff_create, tenant_generate
from scrm.models import Role, Tenant
from scrm.services import api_key_create, staff_add, tenant_create
from scrm.tenancy import tenant_scope

DEMO_SLUG = "demo"
DEMO_NAME = "兰亭美妆（演示品牌）"
DEMO_PASSWORD = "demo-scrm-2025"  # noqa: S105 - the quick start's published demo login
DEMO_MEMBERS = 2_000
DEMO_ORDERS = 8_000
DEMO_STORES = 5
# The store manager and the guide work in the first store.
STORE_ROLES = (Role.STORE_MANAGER, Role.GUIDE)


@dataclass(frozen=True)
class DemoResult:
    tenant: Tenant
    created: bool
    owner_password: str = ""  # "" when the owner's login already existed
    api_key: str = ""


def demo_email(role: str) -> str:
    return f"{role}@{DEMO_SLUG}.example"


def demo_seed(*, seed: int = 1, progress: bool = False) -> DemoResult:
    """Create the demo tenant, all or nothing; an existing one is left as it is."""
    existing = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if existing is not None:
        return DemoResult(tenant=existing, created=False)
    with transaction.atomic():
        tenant, _owner, owner_password = tenant_create(
            slug=DEMO_SLUG, name=DEMO_NAME, owner_email=demo_email(Role.OWNER),
            owner_password=DEMO_PASSWORD)
        with tenant_scope(tenant):
            stores = stores_and_staff_create(tenant=tenant, count=DEMO_STORES, seed=seed,
                                             guides_per_store=(2, 3))
        for role in Role.values:
            if role != Role.OWNER:
                staff_add(tenant=tenant, email=demo_email(role), role=role,
                          store=stores[0] if role in STORE_ROLES else None,
                          display_name=f"演示{Role(role).label}", password=DEMO_PASSWORD)
        tenant_generate(slug=DEMO_SLUG, members=DEMO_MEMBERS, orders=DEMO_ORDERS, seed=seed,
                        timeline=True, progress=progress)
        _key, secret = api_key_create(tenant=tenant, name="演示 API 密钥")
    return DemoResult(tenant=tenant, created=True, owner_password=owner_password,
                      api_key=secret)
