"""Coupons in the admin: templates editable by those who manage coupons, written through the
service; coupons read-only, with a cancel action that calls the service too."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from campaigns.coupons import services
from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services.templates import TEMPLATE_FIELDS
from members.admin import MemberVisibleMixin
from points.admin_mall import ServiceCheckedForm, _service_save
from scrm.access import COUPONS_MANAGE, COUPONS_READ
from scrm.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_for_write
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class CouponTemplateForm(ServiceCheckedForm):
    def service_check(self) -> None:
        services.coupon_template_validate(template=self.instance)


@admin.register(CouponTemplate)
class CouponTemplateAdmin(TenantScopedAdmin):
    form = CouponTemplateForm
    view_scope = COUPONS_READ
    add_scope = change_scope = COUPONS_MANAGE
    list_display = ("code", "name", "kind", "threshold_fen", "validity", "total_stock",
                    "issued_count", "per_member_limit", "is_active", "updated_at")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    fields = ("code", "name", "description", "kind", "amount_fen", "percent_off",
              "max_discount_fen", "gift_name", "threshold_fen", "validity", "valid_from",
              "valid_until", "valid_days", "total_stock", "issued_count", "per_member_limit",
              "stores", "skus", "categories", "allowed_tiers", "is_active", "created_at",
              "updated_at")
    ordering = ("-created_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        readonly = (*super().get_readonly_fields(request, obj), "issued_count", "created_at",
                    "updated_at")
        return readonly if obj is None else (*readonly, "code")  # the mall refers to it

    def save_model(self, request, obj, form, change) -> None:
        names = form.changed_data if change else form.cleaned_data
        changes = {name: form.cleaned_data[name] for name in names if name in TEMPLATE_FIELDS}
        _service_save(request, obj, lambda actor: services.coupon_template_save(
            actor=actor, template=obj if change else None, changes=changes))


@admin.register(Coupon)
class CouponAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = COUPONS_READ
    list_display = ("code", "template", "member", "status", "source", "issued_at",
                    "valid_until", "redeemed_at", "discount_fen")
    list_filter = ("status", "source")
    list_select_related = ("template", "member")
    search_fields = ("=code", "=ref")
    fields = ("code", "template", "member", "status", "source", "ref", "idempotency_key",
              "operator", "issued_at", "valid_from", "valid_until", "redeemed_at",
              "redeemed_order", "order_amount_fen", "discount_fen", "redeemed_store",
              "redeemed_by", "cancelled_at", "cancel_reason")
    ordering = ("-id",)
    actions = ("cancel",)

    def has_cancel_permission(self, request) -> bool:
        return self._allowed(request, COUPONS_MANAGE)

    @admin.action(description=_("作废所选优惠券"), permissions=["cancel"])
    def cancel(self, request, queryset) -> None:
        reason = str(_("管理后台作废"))
        done, refused = 0, []
        for coupon in queryset.order_by("id"):
            tenant = Tenant.objects.get(pk=coupon.tenant_id)
            try:
                with tenant_scope(tenant):
                    services.coupon_cancel(actor=actor_for_write(request, tenant),
                                           coupon=coupon, reason=reason)
            except ApplicationError as exc:
                refused.append(f"{coupon.code}: {exc.detail}")
            else:
                done += 1
        self.message_user(request, _("已作废 %(count)d 张优惠券。") % {"count": done})
        if refused:
            self.message_user(request, "; ".join(refused), level=messages.WARNING)
