"""The points mall in the admin: items and flash sales editable by those who manage points,
written through the services; redemptions read-only, with fulfil and cancel actions that call
the services too."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.admin import MemberVisibleMixin
from points.models import FlashSale, MallItem, MallRedemption
from points.services import mall as services
from scrm.access import PII_READ, POINTS_MANAGE, POINTS_READ, POINTS_WRITE
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
from scrm.tenancy import require_tenant_id, tenant_scope


class ServiceCheckedForm(TenantModelForm):
    """Shows on the form what the service would refuse, instead of failing on save."""

    def service_check(self) -> None:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # the instance now holds the form's values
        if self.errors:
            return
        tenant_id = self.instance.tenant_id or require_tenant_id()
        try:
            with tenant_scope(tenant_id):
                self.service_check()
        except ApplicationError as exc:
            for name, errors in exc.fields.items():
                self.add_error(name if name in self.fields else None, errors)


class MallItemForm(ServiceCheckedForm):
    def service_check(self) -> None:
        services.mall_item_validate(item=self.instance)


class FlashSaleForm(ServiceCheckedForm):
    def service_check(self) -> None:
        services.flash_sale_validate(flash_sale=self.instance,
                                     item=MallItem.objects.get(pk=self.instance.item_id))


def _service_save(request, obj: models.Model, write: Callable[[Any], models.Model]) -> None:
    """Run ``write(actor)`` in the row's tenant, then make ``obj`` the row it saved."""
    tenant = Tenant.objects.get(pk=obj.tenant_id or require_tenant_id())
    with tenant_scope(tenant):
        saved = write(actor_for_write(request, tenant))
    adopt(obj, saved)


def _changes(form, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in names}


@admin.register(MallItem)
class MallItemAdmin(TenantScopedAdmin):
    form = MallItemForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    view_scope = POINTS_READ
    add_scope = change_scope = POINTS_MANAGE
    list_display = ("name", "kind", "points", "cash_fen", "stock", "sold", "per_member_limit",
                    "is_active", "starts_at", "ends_at", "sort_order")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    fields = ("name", "kind", "description", "image_url", "points", "cash_fen", "stock", "sold",
              "per_member_limit", "allowed_tiers", "coupon_template", "starts_at", "ends_at",
              "is_active", "sort_order", "created_at", "updated_at")
    readonly_fields = ("sold", "created_at", "updated_at")
    ordering = ("sort_order", "id")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            changes = _changes(form, services.ITEM_FIELDS)
            _service_save(request, obj, lambda actor: services.mall_item_update(
                actor=actor, item=obj, **changes))
            return
        values = {name: form.cleaned_data[name] for name in services.ITEM_FIELDS
                  if name in form.cleaned_data}
        _service_save(request, obj, lambda actor: services.mall_item_create(actor=actor,
                                                                            **values))


@admin.register(FlashSale)
class FlashSaleAdmin(TenantScopedAdmin):
    form = FlashSaleForm
    view_scope = POINTS_READ
    add_scope = change_scope = POINTS_MANAGE
    list_display = ("__str__", "item", "starts_at", "ends_at", "points", "cash_fen", "stock",
                    "sold", "per_member_limit", "is_active")
    list_filter = ("is_active",)
    list_select_related = ("item",)
    search_fields = ("name", "item__name")
    fields = ("item", "name", "starts_at", "ends_at", "points", "cash_fen", "stock", "sold",
              "per_member_limit", "is_active", "created_at")
    ordering = ("-starts_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        readonly = (*super().get_readonly_fields(request, obj), "sold", "created_at")
        return readonly if obj is None else (*readonly, "item")  # a sale keeps its item

    def save_model(self, request, obj, form, change) -> None:
        if change:
            changes = _changes(form, services.FLASH_SALE_FIELDS)
            _service_save(request, obj, lambda actor: services.flash_sale_update(
                actor=actor, flash_sale=obj, **changes))
            return
        values = {name: form.cleaned_data[name] for name in services.FLASH_SALE_FIELDS
                  if name in form.cleaned_data}
        _service_save(request, obj, lambda actor: services.flash_sale_create(
            actor=actor, item=form.cleaned_data["item"], **values))


@admin.register(MallRedemption)
class MallRedemptionAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = POINTS_READ
    list_display = ("created_at", "member", "item", "flash_sale", "quantity", "points",
                    "cash_fen", "status", "tracking_no")
    list_filter = ("status",)
    list_select_related = ("member", "item", "flash_sale")
    search_fields = ("=payment_ref", "=tracking_no")
    fields = ("member", "item", "flash_sale", "quantity", "points", "cash_fen", "payment_ref",
              "status", "address", "tracking_no", "points_entry", "operator", "idempotency_key",
              "created_at", "fulfilled_at", "cancelled_at", "cancel_reason")
    ordering = ("-created_at", "-id")
    actions = ("fulfil", "cancel")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        actor = request_actor(request)
        # Recipient names and phones: for those who may see personal data, or who ship.
        if actor is not None and not (actor.can(PII_READ) or actor.can(POINTS_MANAGE)):
            fields = [name for name in fields if name != "address"]
        return fields

    def has_fulfil_permission(self, request) -> bool:
        return self._allowed(request, POINTS_MANAGE)

    def has_cancel_permission(self, request) -> bool:
        return self._allowed(request, POINTS_WRITE)

    @admin.action(description=_("标记为已发放"), permissions=["fulfil"])
    def fulfil(self, request, queryset) -> None:
        self._apply(request, queryset, lambda actor, redemption: services.mall_redemption_fulfil(
            actor=actor, redemption=redemption))

    @admin.action(description=_("取消并退回积分与库存"), permissions=["cancel"])
    def cancel(self, request, queryset) -> None:
        reason = str(_("管理后台取消"))
        self._apply(request, queryset, lambda actor, redemption: services.mall_redemption_cancel(
            actor=actor, redemption=redemption, reason=reason))

    def _apply(self, request, queryset, service: Callable[[Any, MallRedemption], Any]) -> None:
        done, refused = 0, []
        for redemption in queryset.order_by("id"):
            tenant = Tenant.objects.get(pk=redemption.tenant_id)
            try:
                with tenant_scope(tenant):
                    service(actor_for_write(request, tenant), redemption)
            except ApplicationError as exc:
                refused.append(f"#{redemption.pk}: {exc.detail}")
            else:
                done += 1
        self.message_user(request, _("已处理 %(count)d 个订单。") % {"count": done})
        if refused:
            self.message_user(request, "; ".join(refused), level=messages.WARNING)
