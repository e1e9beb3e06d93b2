import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm import access
from scrm.audit import audit_purge_allow, audit_write
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


def _label(actor: "access.Actor | None") -> str:
    return actor.label if actor is not None else "system"


@transaction.atomic
def staff_add(*, tenant: Tenant, email: str, role: str, store: Store | None = None,
              display_name: str = "", password: str | None = None,
              actor: "access.Actor | None" = None) -> tuple[StaffMembership, str]:
    user, password = staff_user_get_or_create(email=email, password=password)
    before = StaffMembership.objects.filter(tenant=tenant, user=user).first()
    membership, created = StaffMembership.objects.update_or_create(
        tenant=tenant, user=user,
        defaults={"role": role, "store": store, "display_name": display_name,
                  "is_active": True},
    )
    audit_write(tenant_id=tenant.pk, actor_label=_label(actor),
                action="staff.added" if created else "staff.updated",
                target_type="staffmembership", target_id=membership.pk,
                data={"email": email, "role": role,
                      **({"role_before": before.role, "was_active": before.is_active}
                         if before is not None else {})})
    return membership, password


def _key_audit(api_key: ApiKey, action: str, actor: "access.Actor | None") -> None:
    audit_write(tenant_id=api_key.tenant_id, actor_label=_label(actor), action=action,
                target_type="apikey", target_id=api_key.pk,
                data={"name": api_key.name, "prefix": api_key.prefix})


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str, scopes: list[str] | None = None,
                   actor: "access.Actor | None" = None) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and only its hash is kept.  Without
    ``scopes``, every scope but the owners' own (audit, personal-data requests)."""
    scopes = list(scopes or access.ALL_SCOPES)
    unknown = set(scopes) - set(access.GRANTABLE_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    prefix, secret = ApiKey.generate()
    api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix,
                                    key_hash=ApiKey.hash_secret(secret), scopes=scopes)
    _key_audit(api_key, "api_key.created", actor)
    return api_key, secret


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: "access.Actor | None" = None) -> None:
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    if revoked:  # revoking a revoked key again changes nothing and records nothing
        _key_audit(api_key, "api_key.revoked", actor)
    api_keys_forget(prefixes=[api_key.prefix])


@transaction.atomic
def api_keys_delete(*, api_keys: list[ApiKey], actor: "access.Actor | None" = None) -> None:
    ApiKey.objects.filter(pk__in=[api_key.pk for api_key in api_keys]).delete()
    for api_key in api_keys:
        _key_audit(api_key, "api_key.deleted", actor)
    api_keys_forget(prefixes=[api_key.prefix for api_key in api_keys])


def tenant_update(*, tenant: Tenant) -> None:
    """Save an edited tenant; its API keys are looked up afresh (it may be switched off)."""
    tenant.save()
    _tenant_keys_forget(tenants=[tenant])


@transaction.atomic
def tenants_delete(*, tenants: list[Tenant]) -> None:
    """Delete tenants with all their data, their audit log included."""
    audit_purge_allow()
    _tenant_keys_forget(tenants=tenants)
    for tenant in tenants:
        tenant.delete()


def _tenant_keys_forget(*, tenants: list[Tenant]) -> None:
    prefixes = ApiKey.objects.filter(tenant__in=tenants).values_list("prefix", flat=True)
    api_keys_forget(prefixes=list(prefixes))


@transaction.atomic
def staff_delete(*, memberships: list[StaffMembership], actor: "access.Actor | None" = None
                 ) -> None:
    for membership in memberships:
        audit_write(tenant_id=membership.tenant_id, actor_label=_label(actor),
                    action="staff.deleted", target_type="staffmembership",
                    target_id=membership.pk,
                    data={"login": membership.user.get_username(), "role": membership.role})
    StaffMembership.objects.filter(pk__in=[m.pk for m in memberships]).delete()


STAFF_FIELDS = ("role", "store", "display_name", "wecom_userid", "is_active")


@transaction.atomic
def staff_update(*, tenant: Tenant, membership: StaffMembership,
                 actor: "access.Actor | None" = None, **changes) -> StaffMembership:
    """Change a staff member's role, store, name, WeCom userid or whether they may sign in.
    A store manager needs a store; the tenant keeps at least one active owner."""
    from scrm.api.errors import ApplicationError

    if membership.tenant_id != tenant.pk:
        raise ApplicationError("staff of another tenant", code="not_found", status_code=404)
    before = StaffMembership.objects.filter(pk=membership.pk).values(*STAFF_FIELDS).first() or {}
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
    _staff_change_audit(membership, before, actor)
    return membership


def _staff_change_audit(membership: StaffMembership, before: dict,
                        actor: "access.Actor | None") -> None:
    after = {"role": membership.role, "store": membership.store_id,
             "display_name": membership.display_name, "wecom_userid": membership.wecom_userid,
             "is_active": membership.is_active}
    changed = {key: [before.get(key), value] for key, value in after.items()
               if before.get(key) != value}
    if not changed:
        return
    if "is_active" in changed:
        action = "staff.enabled" if membership.is_active else "staff.removed"
    else:
        action = "staff.role_changed" if "role" in changed else "staff.updated"
    audit_write(tenant_id=membership.tenant_id, actor_label=_label(actor), action=action,
                target_type="staffmembership", target_id=membership.pk, data=changed)
