import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm import access
from scrm.models import ApiKey, Brand, Role, StaffMembership, Store, Tenant
from scrm.selectors import api_keys_forget
from scrm.tenancy import tenant_scope


@transaction.atomic
def tenant_create(*, slug: str, name: str, owner_email: str,
                  owner_password: str | None = None) -> tuple[Tenant, StaffMembership, str]:
    """A tenant with its first brand and its owner.  Returns the owner's password when a new
    login was made for them ("" when the login already existed)."""
    tenant = Tenant.objects.create(slug=slug, name=name)
    with tenant_scope(tenant):
        Brand.objects.create(tenant=tenant, name=name, code=slug)
    user, password = staff_user_get_or_create(email=owner_email, password=owner_password)
    owner = StaffMembership.objects.create(user=user, tenant=tenant, role=Role.OWNER,
                                           display_name=owner_email.split("@")[0])
    return tenant, owner, password


def staff_user_get_or_create(*, email: str, password: str | None = None) -> tuple[object, str]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=email).first()
    if user is not None:
        if not user.is_staff:  # tenant staff sign in through the admin
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        return user, ""
    password = password or secrets.token_urlsafe(12)
    user = user_model.objects.create_user(username=email, email=email, password=password,
                                          is_staff=True)
    return user, password


@transaction.atomic
def staff_add(*, tenant: Tenant, email: str, role: str, store: Store | None = None,
              display_name: str = "", password: str | None = None
              ) -> tuple[StaffMembership, str]:
    user, password = staff_user_get_or_create(email=email, password=password)
    membership, _created = StaffMembership.objects.update_or_create(
        tenant=tenant, user=user,
        defaults={"role": role, "store": store, "display_name": display_name,
                  "is_active": True},
    )
    return membership, password


def api_key_create(*, tenant: Tenant, name: str, scopes: list[str] | None = None
                   ) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and only its hash is kept."""
    scopes = list(scopes or access.ALL_SCOPES)
    unknown = set(scopes) - set(access.ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    prefix, secret = ApiKey.generate()
    api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix,
                                    key_hash=ApiKey.hash_secret(secret), scopes=scopes)
    return api_key, secret


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    api_keys_forget(prefixes=[api_key.prefix])


def api_keys_delete(*, api_keys: list[ApiKey]) -> None:
    ApiKey.objects.filter(pk__in=[api_key.pk for api_key in api_keys]).delete()
    api_keys_forget(prefixes=[api_key.prefix for api_key in api_keys])


def tenant_update(*, tenant: Tenant) -> None:
    """Save an edited tenant; its API keys are looked up afresh (it may be switched off)."""
    tenant.save()
    _tenant_keys_forget(tenants=[tenant])


def tenants_delete(*, tenants: list[Tenant]) -> None:
    _tenant_keys_forget(tenants=tenants)
    for tenant in tenants:
        tenant.delete()


def _tenant_keys_forget(*, tenants: list[Tenant]) -> None:
    prefixes = ApiKey.objects.filter(tenant__in=tenants).values_list("prefix", flat=True)
    api_keys_forget(prefixes=list(prefixes))


STAFF_FIELDS = ("role", "store", "display_name", "wecom_userid", "is_active")


@transaction.atomic
def staff_update(*, tenant: Tenant, membership: StaffMembership, **changes) -> StaffMembership:
    """Change a staff member's role, store, name, WeCom userid or whether they may sign in.
    A store manager needs a store; the tenant keeps at least one active owner."""
    from scrm.api.errors import ApplicationError

    if membership.tenant_id != tenant.pk:
        raise ApplicationError("staff of another tenant", code="not_found", status_code=404)
    for key, value in changes.items():
        if key in STAFF_FIELDS:
            setattr(membership, key, value)
    if membership.role == Role.STORE_MANAGER and membership.store_id is None:
        raise ApplicationError(_("店长必须指定门店。"), code="store_required")
    others = StaffMembership.objects.filter(tenant=tenant, role=Role.OWNER, is_active=True
                                            ).exclude(pk=membership.pk)
    if not (membership.role == Role.OWNER and membership.is_active) and not others.exists():
        raise ApplicationError(_("租户至少要保留一位启用中的所有者。"), code="last_owner")
    membership.save()
    return membership
