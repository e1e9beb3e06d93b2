"""The Django admin, tenant-scoped for tenant staff and whole-platform for superusers.

Tenant staff reach the admin through their ``StaffMembership``: the middleware has already put
the request inside their tenant and set ``request.actor``.  What they may do comes from their
role's scopes (``scrm.access.ROLE_SCOPES``), not from Django's per-user permission tables.
Platform superusers without a membership run unscoped (the middleware says so explicitly) and
see every tenant, with a tenant column and filter.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from scrm import services, tenancy
from scrm.access import (
    ALL_SCOPES,
    AUDIT_READ,
    GRANTABLE_SCOPES,
    MEMBERS_READ,
    MEMBERS_WRITE,
    ORDERS_READ,
    ORDERS_WRITE,
    PII_READ,
    STAFF_MANAGE,
    Actor,
)
from scrm.audit import audit_write
from scrm.models import ApiKey, AuditEntry, Brand, Job, Role, StaffMembership, Store, Tenant

admin.site.site_header = _("私域 SCRM")
admin.site.site_title = _("私域 SCRM")
admin.site.index_title = _("管理后台")

# A permission that no tenant role holds: only platform superusers pass it.
SUPERUSER_ONLY = "platform:superuser"

SCOPE_LABELS = {
    MEMBERS_READ: _("读取会员"),
    MEMBERS_WRITE: _("写入会员"),
    ORDERS_READ: _("读取订单"),
    ORDERS_WRITE: _("写入订单"),
    PII_READ: _("查看完整个人信息"),
    "tags:manage": _("管理标签"),
    "segments:write": _("管理人群"),
    "points:read": _("查看积分"),
    "points:write": _("积分发放与使用"),
    "points:adjust": _("调整积分"),
    "points:manage": _("管理积分规则"),
}


def request_actor(request) -> Actor | None:
    return getattr(request, "actor", None)


def is_platform(request) -> bool:
    """A superuser outside any tenant: the middleware runs the request unscoped."""
    return request.user.is_superuser and request_actor(request) is None


def has_tenant_field(model: type[models.Model]) -> bool:
    return any(field.name == "tenant" for field in model._meta.concrete_fields)


def adopt(target: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved form instance stand for the row a service saved."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def actor_for_write(request, tenant: Tenant) -> Actor:
    """The actor a service sees: the staff member, or for a platform superuser the tenant
    with every scope."""
    return request_actor(request) or Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


class TenantModelForm(forms.ModelForm):
    """Refuses references to another tenant's rows (platform superusers pick from every
    tenant; the database's composite foreign keys would refuse them too, less politely)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        tenant_id = (
            tenant.pk
            if tenant is not None
            else getattr(self.instance, "tenant_id", None) or tenancy.current_tenant_id()
        )
        if tenant_id is None:
            return cleaned
        for name, value in cleaned.items():
            if name == "tenant" or not isinstance(value, models.Model):
                continue
            if getattr(value, "tenant_id", tenant_id) != tenant_id:
                self.add_error(name, _("只能选择同一租户的数据。"))
        return cleaned


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for every admin of tenant data.

    Each permission names the scope it needs (``None``: nobody, not even a superuser;
    ``SUPERUSER_ONLY``: platform superusers).  Querysets are restricted to the actor's tenant
    and, through ``restrict_to_actor``, to what their role may see."""

    form = TenantModelForm
    view_scope: str | None = MEMBERS_READ
    add_scope: str | None = None
    change_scope: str | None = None
    delete_scope: str | None = None
    show_full_result_count = False

    # Permissions from role scopes

    def _allowed(self, request, scope: str | None) -> bool:
        if scope is None or not request.user.is_active:
            return False
        if request.user.is_superuser:
            return True
        actor = request_actor(request)
        return actor is not None and actor.can(scope)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and (
            request.user.is_superuser or request_actor(request) is not None
        )

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, self.view_scope) or self.has_change_permission(request, obj)

    def has_add_permission(self, request) -> bool:
        return self._allowed(request, self.add_scope)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, self.change_scope)

    def has_delete_permission(self, request, obj=None) -> bool:
        actor = request_actor(request)
        if actor is not None and actor.guide_id is not None and not request.user.is_superuser:
            return False
        return self._allowed(request, self.delete_scope)

    # Querysets

    def get_queryset(self, request) -> models.QuerySet:
        actor = request_actor(request)
        if actor is None and not is_platform(request):
            return self.model._default_manager.none()
        queryset = super().get_queryset(request)
        if actor is None:
            return queryset
        if has_tenant_field(self.model):
            queryset = queryset.filter(tenant_id=actor.tenant.pk)
        return self.restrict_to_actor(queryset, actor)

    def restrict_to_actor(self, queryset: models.QuerySet, actor: Actor) -> models.QuerySet:
        """Narrow the tenant's rows to what this actor may see (guides, store managers)."""
        return queryset

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another tenant's object and a missing one look the same: 404, not a redirect.
        raise Http404

    # The tenant column and filter, for platform superusers

    def get_list_display(self, request):
        list_display = super().get_list_display(request)
        if is_platform(request) and has_tenant_field(self.model):
            return ("tenant", *list_display)
        return list_display

    def get_list_filter(self, request):
        list_filter = super().get_list_filter(request)
        if is_platform(request) and has_tenant_field(self.model):
            return ("tenant", *list_filter)
        return list_filter

    def get_list_select_related(self, request):
        related = super().get_list_select_related(request)
        if is_platform(request) and has_tenant_field(self.model):
            return ("tenant", *(related if isinstance(related, (list, tuple)) else ()))
        return related

    # Forms: tenant staff never see the tenant field; the row is stamped with their tenant.

    def get_fields(self, request, obj=None):
        fields = [name for name in super().get_fields(request, obj) if name != "tenant"]
        if has_tenant_field(self.model) and is_platform(request):
            fields.insert(0, "tenant")
        return fields

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and has_tenant_field(self.model) and is_platform(request):
            readonly = ("tenant", *readonly)
        return readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        # formfield_for_foreignkey has no obj; a platform superuser editing a row gets the
        # dropdowns of that row's tenant.
        request.scrm_form_tenant_id = getattr(obj, "tenant_id", None)
        return super().get_form(request, obj, change, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        tenant_id = tenancy.current_tenant_id() or getattr(request, "scrm_form_tenant_id", None)
        if related is Tenant and not is_platform(request):
            kwargs["queryset"] = Tenant.objects.filter(pk=tenancy.current_tenant_id())
        elif has_tenant_field(related) and tenant_id is not None:
            queryset = kwargs.get("queryset", related._default_manager.all())
            kwargs["queryset"] = queryset.filter(tenant_id=tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        if has_tenant_field(self.model) and obj.tenant_id is None:
            obj.tenant_id = tenancy.require_tenant_id()
        super().save_model(request, obj, form, change)

    # Deletions are audited; admins whose rows have a service of their own override these.

    def _deletion_audit(self, request, objs) -> None:
        actor = request_actor(request)
        label = actor.label if actor is not None else f"platform:{request.user.pk}"
        for obj in objs:
            if getattr(obj, "tenant_id", None) is not None:
                audit_write(tenant_id=obj.tenant_id, actor_label=label, action="admin.deleted",
                            target_type=obj._meta.model_name, target_id=obj.pk,
                            data={"object": str(obj)[:200]})

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            self._deletion_audit(request, [obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            self._deletion_audit(request, list(queryset))
            super().delete_queryset(request, queryset)


class ReadOnlyAdmin(TenantScopedAdmin):
    """Records written only by services (identities, merges, timeline, stats).  Subclasses
    declare ``fields`` (building a form to find them would ask for the read-only fields
    again)."""

    add_scope = change_scope = delete_scope = None

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    view_scope = MEMBERS_READ

    def has_view_permission(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        actor = request_actor(request)
        return actor is not None and actor.can(self.view_scope)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.fields or ()


# Tenants


class TenantAddForm(forms.ModelForm):
    owner_email = forms.EmailField(label=_("所有者邮箱"))

    class Meta:
        model = Tenant
        fields = ("slug", "name")


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    view_scope = MEMBERS_READ
    add_scope = SUPERUSER_ONLY
    change_scope = STAFF_MANAGE
    delete_scope = SUPERUSER_ONLY
    list_display = ("name", "slug", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    ordering = ("name",)

    def get_queryset(self, request) -> models.QuerySet:
        actor = request_actor(request)
        if actor is not None:
            return Tenant.objects.filter(pk=actor.tenant.pk)
        if is_platform(request):
            return Tenant.objects.all()
        return Tenant.objects.none()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("slug", "name", "owner_email")
        return ("slug", "name", "is_active", "created_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if is_platform(request):
            return ("slug", "created_at")
        return ("slug", "is_active", "created_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            services.tenant_update(tenant=obj)
            return
        tenant, _owner, password = services.tenant_create(
            slug=form.cleaned_data["slug"],
            name=form.cleaned_data["name"],
            owner_email=form.cleaned_data["owner_email"],
        )
        adopt(obj, tenant)
        if password:
            messages.warning(
                request,
                _("已为 %(email)s 创建登录账号，初始密码（只显示这一次）：%(password)s")
                % {"email": form.cleaned_data["owner_email"], "password": password},
            )

    def delete_model(self, request, obj) -> None:
        services.tenants_delete(tenants=[obj])

    def delete_queryset(self, request, queryset) -> None:
        services.tenants_delete(tenants=list(queryset))


@admin.register(Brand)
class BrandAdmin(TenantScopedAdmin):
    add_scope = change_scope = delete_scope = STAFF_MANAGE
    list_display = ("name", "code")
    search_fields = ("name", "code")
    ordering = ("name",)


@admin.register(Store)
class StoreAdmin(TenantScopedAdmin):
    add_scope = change_scope = delete_scope = STAFF_MANAGE
    list_display = ("code", "name", "brand", "region", "province", "city", "is_active")
    list_filter = ("is_active", "brand", "region")
    list_select_related = ("brand",)
    search_fields = ("code", "name", "city")
    ordering = ("code",)


# Staff


# These forms name no foreign key to a tenant-owned model in Meta: building such a field at
# import time would query outside any tenant.  The admin passes the full field list per request.


class StaffAddForm(TenantModelForm):
    email = forms.EmailField(label=_("登录邮箱"))

    class Meta:
        model = StaffMembership
        fields = ("tenant", "role", "display_name")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("role") == Role.STORE_MANAGER and not cleaned.get("store"):
            self.add_error("store", _("店长必须指定门店。"))
        return cleaned


class StaffChangeForm(TenantModelForm):
    class Meta:
        model = StaffMembership
        fields = ("role", "display_name", "wecom_userid", "is_active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("role") == Role.STORE_MANAGER and not cleaned.get("store"):
            self.add_error("store", _("店长必须指定门店。"))
        return cleaned


@admin.register(StaffMembership)
class StaffMembershipAdmin(TenantScopedAdmin):
    view_scope = add_scope = change_scope = delete_scope = STAFF_MANAGE
    list_display = ("__str__", "user", "role", "store", "is_active", "created_at")
    list_filter = ("role", "is_active")
    list_select_related = ("user", "store")
    search_fields = ("display_name", "user__username", "wecom_userid")
    ordering = ("-created_at",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = StaffAddForm if obj is None else StaffChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            fields = ["email", "role", "store", "display_name"]
        else:
            fields = [
                "user",
                "role",
                "store",
                "display_name",
                "wecom_userid",
                "is_active",
                "created_at",
            ]
        if is_platform(request):
            fields.insert(0, "tenant")
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("tenant", "user", "created_at") if is_platform(request) else ("user", "created_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            from scrm.api.errors import ApplicationError  # DRF's settings import this module

            try:
                services.staff_update(
                    tenant=obj.tenant, membership=obj, actor=request_actor(request),
                    **{name: form.cleaned_data[name] for name in form.changed_data
                       if name in services.STAFF_FIELDS})
            except ApplicationError as exc:
                messages.error(request, str(exc.detail))
            return
        tenant = form.cleaned_data.get("tenant") or request_actor(request).tenant
        membership, password = services.staff_add(
            actor=request_actor(request),
            tenant=tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            store=form.cleaned_data.get("store"),
            display_name=form.cleaned_data.get("display_name", ""),
        )
        adopt(obj, membership)
        if password:
            messages.warning(
                request,
                _("已为 %(email)s 创建登录账号，初始密码（只显示这一次）：%(password)s")
                % {"email": form.cleaned_data["email"], "password": password},
            )


    def delete_model(self, request, obj) -> None:
        services.staff_delete(memberships=[obj], actor=request_actor(request))

    def delete_queryset(self, request, queryset) -> None:
        services.staff_delete(memberships=list(queryset), actor=request_actor(request))


# API keys


class ApiKeyForm(TenantModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("权限范围"),
        choices=[(scope, SCOPE_LABELS.get(scope, scope)) for scope in GRANTABLE_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(ALL_SCOPES),
    )

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "scopes")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    view_scope = add_scope = change_scope = STAFF_MANAGE
    delete_scope = SUPERUSER_ONLY
    exclude = ("key_hash",)
    list_display = (
        "name",
        "prefix",
        "scope_list",
        "is_active",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    search_fields = ("name", "=prefix")
    ordering = ("-created_at",)
    actions = ("revoke",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            fields = ["name", "scopes"]
        else:
            fields = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
        if is_platform(request):
            fields.insert(0, "tenant")
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [name for name in self.get_fields(request, obj) if name != "name"]

    @admin.display(description=_("权限范围"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(boolean=True, description=_("有效"))
    def is_active(self, obj: ApiKey) -> bool:
        return obj.revoked_at is None

    def save_model(self, request, obj, form, change) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        tenant = form.cleaned_data.get("tenant") or request_actor(request).tenant
        api_key, secret = services.api_key_create(
            tenant=tenant, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
            actor=request_actor(request),
        )
        adopt(obj, api_key)
        messages.warning(
            request,
            _("请立即复制 API 密钥，它只显示这一次：%(secret)s") % {"secret": secret},
        )

    def delete_model(self, request, obj) -> None:
        services.api_keys_delete(api_keys=[obj], actor=request_actor(request))

    def delete_queryset(self, request, queryset) -> None:
        services.api_keys_delete(api_keys=list(queryset), actor=request_actor(request))

    @admin.action(description=_("吊销所选密钥"), permissions=["change"])
    def revoke(self, request, queryset) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            services.api_key_revoke(api_key=api_key, actor=request_actor(request))
        self.message_user(request, _("已吊销 %(count)d 个密钥。") % {"count": len(keys)})


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: nobody adds, changes or deletes entries here (PostgreSQL refuses too)."""

    view_scope = AUDIT_READ
    list_display = ("created_at", "actor", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "target_type")
    search_fields = ("=actor", "=action")
    fields = ("created_at", "actor", "action", "target_type", "target_id", "data", "ip")
    ordering = ("-created_at",)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "done", "total", "created_by", "created_at", "finished_at")
    list_filter = ("status", "kind")
    fields = (
        "kind",
        "status",
        "done",
        "total",
        "params",
        "result",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    ordering = ("-created_at",)
