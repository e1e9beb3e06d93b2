"""Tier programmes in the admin: a programme and its levels edited on one page and saved
through ``tier_program_save`` (so thresholds are checked and level tags kept); standings,
changes and growth entries read-only."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from members.admin import MemberVisibleMixin
from points.models import GrowthEntry, MemberTier, TierChange, TierLevel, TierProgram
from points.services.tiers import LEVEL_FIELDS, PROGRAM_FIELDS, levels_validate, tier_program_save
from scrm.access import POINTS_MANAGE, POINTS_READ
from scrm.admin import (
    ReadOnlyAdmin,
    TenantScopedAdmin,
    actor_for_write,
    adopt,
    request_actor,
)
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id, tenant_scope


class LevelFormSet(forms.BaseInlineFormSet):
    def levels(self) -> list[dict]:
        """The levels kept on the page, lowest threshold first."""
        kept = [form.cleaned_data for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        return sorted(({name: data[name] for name in LEVEL_FIELDS if name in data}
                       for data in kept), key=lambda level: level["threshold"])

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        try:
            levels_validate(self.levels())
        except ApplicationError as exc:
            raise ValidationError(str(exc.detail)) from exc


class TierLevelInline(admin.TabularInline):
    model = TierLevel
    formset = LevelFormSet
    extra = 0
    fields = ("code", "name", "threshold", "discount_percent", "points_multiplier",
              "birthday_points", "birthday_coupon", "free_shipping", "exclusive_coupons",
              "lottery_weight", "priority_service", "description")
    ordering = ("rank",)

    def _allowed(self, request, scope: str) -> bool:
        actor = request_actor(request)
        return request.user.is_superuser or (actor is not None and actor.can(scope))

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, POINTS_READ)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._allowed(request, POINTS_MANAGE)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, POINTS_MANAGE)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, POINTS_MANAGE)


@admin.register(TierProgram)
class TierProgramAdmin(TenantScopedAdmin):
    view_scope = POINTS_READ
    add_scope = change_scope = POINTS_MANAGE
    inlines = [TierLevelInline]
    list_display = ("name", "brand", "basis", "window_days", "review_days", "protection_days",
                    "is_active")
    list_filter = ("basis", "is_active")
    fields = PROGRAM_FIELDS

    def save_model(self, request, obj, form, change) -> None:
        """Saved with its levels in ``save_related``, in one service call."""

    def save_related(self, request, form, formsets, change) -> None:
        tenant = Tenant.objects.get(pk=form.instance.tenant_id or require_tenant_id())
        changes = {name: form.cleaned_data[name] for name in PROGRAM_FIELDS
                   if name in form.cleaned_data and (not change or name in form.changed_data)}
        levels = next(fs for fs in formsets if isinstance(fs, LevelFormSet)).levels()
        with tenant_scope(tenant):
            program = TierProgram.objects.get(pk=form.instance.pk) if change else None
            saved = tier_program_save(actor=actor_for_write(request, tenant), program=program,
                                      changes=changes, levels=levels)
        adopt(form.instance, saved)
        for formset in formsets:  # what the change message reads of a saved formset
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class TiersReadOnlyAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = POINTS_READ
    list_select_related = ("member",)


@admin.register(MemberTier)
class MemberTierAdmin(TiersReadOnlyAdmin):
    list_display = ("member", "program", "level", "growth_total", "achieved_at",
                    "protected_until", "next_review_at", "is_override")
    list_filter = ("program", "level", "is_override")
    list_select_related = ("member", "program", "level")
    fields = ("member", "program", "level", "growth_total", "achieved_at", "protected_until",
              "next_review_at", "is_override", "override_reason", "override_until",
              "updated_at")
    ordering = ("-updated_at",)


@admin.register(TierChange)
class TierChangeAdmin(TiersReadOnlyAdmin):
    list_display = ("created_at", "member", "program", "kind", "from_level", "to_level",
                    "qualifying_value", "reason", "operator")
    list_filter = ("kind", "program")
    list_select_related = ("member", "program", "from_level", "to_level")
    fields = ("member", "program", "kind", "from_level", "to_level", "qualifying_value",
              "reason", "operator", "created_at")
    ordering = ("-created_at", "-id")


@admin.register(GrowthEntry)
class GrowthEntryAdmin(TiersReadOnlyAdmin):
    list_display = ("created_at", "member", "program", "source", "points", "reason",
                    "ref_type", "ref_id", "operator")
    list_filter = ("source", "program")
    search_fields = ("=ref_id", "=idempotency_key")
    fields = ("member", "program", "source", "points", "reason", "ref_type", "ref_id",
              "operator", "idempotency_key", "created_at")
    ordering = ("-created_at", "-id")

