"""RFM and lifecycle in the admin: the two settings pages editable by those who manage tags
(saved through the services, so the same rules apply), runs read-only."""

import copy

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from campaigns.rfm.models import LifecycleConfig, RfmConfig, RfmRun
from campaigns.rfm.services.config import (
    LIFECYCLE_FIELDS,
    RFM_FIELDS,
    lifecycle_config_get,
    lifecycle_config_update,
    lifecycle_config_validate,
    rfm_config_get,
    rfm_config_update,
    rfm_config_validate,
)
from scrm.access import MEMBERS_READ, TAGS_MANAGE
from scrm.admin import (
    ReadOnlyAdmin,
    TenantModelForm,
    TenantScopedAdmin,
    actor_for_write,
    adopt,
    request_actor,
)
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class SettingsForm(TenantModelForm):
    """Shows what the service would refuse (unordered thresholds...) on the page."""

    validate = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        probe = copy.copy(self.instance)
        for name, value in cleaned.items():
            setattr(probe, name, value)
        try:
            type(self).validate(probe)
        except ApplicationError as exc:
            raise ValidationError({field: messages for field, messages in exc.fields.items()
                                   if field in self.fields} or str(exc.detail)) from exc
        return cleaned


class SettingsAdmin(TenantScopedAdmin):
    """One row per tenant, made on first use; saved through ``update``."""

    view_scope = MEMBERS_READ
    change_scope = TAGS_MANAGE
    get_row = update = None
    setting_fields: tuple[str, ...] = ()

    def changelist_view(self, request, extra_context=None):
        if request_actor(request) is not None:  # tenant staff go straight to theirs
            row = type(self).get_row()
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        tenant = Tenant.objects.get(pk=obj.tenant_id)
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in self.setting_fields}
        with tenant_scope(tenant):
            saved = type(self).update(actor=actor_for_write(request, tenant), changes=changes)
        adopt(obj, saved)


@admin.register(RfmConfig)
class RfmConfigAdmin(SettingsAdmin):
    get_row, update = staticmethod(rfm_config_get), staticmethod(rfm_config_update)
    form = type("RfmConfigForm", (SettingsForm,), {"validate": staticmethod(rfm_config_validate)})
    setting_fields = fields = RFM_FIELDS
    list_display = ("__str__", "window_days", "scoring", "r_high", "f_high", "m_high",
                    "updated_at")


@admin.register(LifecycleConfig)
class LifecycleConfigAdmin(SettingsAdmin):
    get_row = staticmethod(lifecycle_config_get)
    update = staticmethod(lifecycle_config_update)
    form = type("LifecycleConfigForm", (SettingsForm,),
                {"validate": staticmethod(lifecycle_config_validate)})
    setting_fields = fields = LIFECYCLE_FIELDS
    list_display = ("__str__", "new_days", "loyal_orders", "loyal_spend_fen", "dormant_days",
                    "lost_days", "last_pass_at")


@admin.register(RfmRun)
class RfmRunAdmin(ReadOnlyAdmin):
    view_scope = MEMBERS_READ
    list_display = ("pk", "as_of", "status", "members", "scored", "changed", "duration_ms",
                    "triggered_by")
    list_filter = ("status",)
    fields = ("status", "as_of", "window_start", "config", "counts", "members", "scored",
              "changed", "timings", "duration_ms", "triggered_by", "job", "started_at",
              "finished_at")
    ordering = ("-pk",)
