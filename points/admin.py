"""Points in the admin: the ledger, lots, accounts and check-ins read-only (every write goes
through the services), the policy editable by those who may manage it."""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from members.admin import MemberVisibleMixin
from points.models import PointsAccount, PointsCheckIn, PointsEntry, PointsLot, PointsPolicy
from points.services import policy_get, policy_update
from points.services.policy import POLICY_FIELDS
from scrm.access import POINTS_MANAGE, POINTS_READ
from scrm.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_for_write, adopt, request_actor
from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class PointsReadOnlyAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = POINTS_READ
    list_select_related = ("member",)


@admin.register(PointsAccount)
class PointsAccountAdmin(PointsReadOnlyAdmin):
    list_display = ("member", "balance", "shortfall", "lifetime_earned", "is_active", "updated_at")
    list_filter = ("is_active",)
    fields = ("member", "balance", "shortfall", "lifetime_earned", "is_active", "created_at",
              "updated_at")
    ordering = ("-updated_at",)


@admin.register(PointsEntry)
class PointsEntryAdmin(PointsReadOnlyAdmin):
    list_display = ("created_at", "member", "kind", "points", "balance_after", "shortfall_delta",
                    "reason", "ref_type", "ref_id", "operator")
    list_filter = ("kind", "ref_type")
    search_fields = ("=ref_id", "=idempotency_key")
    fields = ("member", "kind", "points", "balance_after", "shortfall_delta", "reason",
              "ref_type", "ref_id", "operator", "idempotency_key", "created_at")
    ordering = ("-created_at", "-id")


@admin.register(PointsLot)
class PointsLotAdmin(PointsReadOnlyAdmin):
    list_display = ("member", "earned", "remaining", "status", "earned_at", "expires_at")
    list_filter = ("status",)
    fields = ("member", "earned", "remaining", "status", "earned_at", "expires_at",
              "source_entry")
    ordering = ("-earned_at",)


@admin.register(PointsCheckIn)
class PointsCheckInAdmin(PointsReadOnlyAdmin):
    list_display = ("member", "day", "streak", "points", "created_at")
    fields = ("member", "day", "streak", "points", "entry", "created_at")
    ordering = ("-day",)


@admin.register(PointsPolicy)
class PointsPolicyAdmin(TenantScopedAdmin):
    view_scope = POINTS_READ
    change_scope = POINTS_MANAGE
    list_display = ("__str__", "points_per_yuan", "rounding", "expiry_mode", "point_value_fen",
                    "updated_at")
    fields = POLICY_FIELDS
    readonly_fields = ("updated_at",)

    def changelist_view(self, request, extra_context=None):
        # One row per tenant, made on first use: tenant staff go straight to theirs.
        if request_actor(request) is not None:
            policy = policy_get()
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[policy.pk]))
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        tenant = Tenant.objects.get(pk=obj.tenant_id)
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in POLICY_FIELDS}
        with tenant_scope(tenant):
            saved = policy_update(actor=actor_for_write(request, tenant), changes=changes)
        adopt(obj, saved)


from points import admin_mall, admin_tiers  # noqa: E402, F401
