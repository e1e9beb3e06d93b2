"""Referral campaigns and lotteries in the admin: each edited on one page with its reward
rules (prizes) and saved through its service; invites, attributions (with approve and
reject actions for held ones), grants and draws read-only."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.referrals.models import (
    Lottery,
    LotteryDraw,
    LotteryPrize,
    ReferralAttribution,
    ReferralCampaign,
    ReferralGrant,
    ReferralInvite,
    ReferralReward,
)
from campaigns.referrals.services import (
    lottery_save,
    referral_attribution_review,
    referral_campaign_save,
)
from campaigns.referrals.services.campaigns import (
    CAMPAIGN_FIELDS,
    REWARD_FIELDS,
    rewards_validate,
)
from campaigns.referrals.services.lottery import LOTTERY_FIELDS, prizes_validate
from members.admin import MemberVisibleMixin
from scrm import tenancy
from scrm.access import CAMPAIGNS_MANAGE, CAMPAIGNS_READ
from scrm.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_for_write, adopt, request_actor
from scrm.api.errors import ApplicationError
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id, tenant_scope

PRIZE_FIELDS = ("name", "kind", "action", "params", "weight", "stock", "is_active")


class ServiceCheckedFormSet(forms.BaseInlineFormSet):
    """Rows kept on the page, checked by the service's own rules."""

    fields_kept: tuple[str, ...] = ()

    def rows(self) -> list[dict[str, Any]]:
        kept = [form for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        rows = []
        for form in kept:
            row = {name: form.cleaned_data[name] for name in self.fields_kept
                   if name in form.cleaned_data}
            if form.instance.pk:
                row["id"] = form.instance.pk
            rows.append(row)
        return rows

    def service_check(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        tenant_id = self.instance.tenant_id or tenancy.current_tenant_id()
        if tenant_id is None:
            return  # a platform superuser's new row: the service checks it on save
        try:
            with tenant_scope(tenant_id):
                self.service_check(self.rows())
        except ApplicationError as exc:
            raise ValidationError(str(exc.detail)) from exc


class RewardFormSet(ServiceCheckedFormSet):
    fields_kept = REWARD_FIELDS

    def service_check(self, rows: list[dict[str, Any]]) -> None:
        rewards_validate([{k: v for k, v in row.items() if k != "id"} for row in rows])


class PrizeFormSet(ServiceCheckedFormSet):
    fields_kept = PRIZE_FIELDS

    def service_check(self, rows: list[dict[str, Any]]) -> None:
        prizes_validate(rows)


class ManagedInline(admin.TabularInline):
    extra = 0

    def _allowed(self, request, scope: str) -> bool:
        actor = request_actor(request)
        return request.user.is_superuser or (actor is not None and actor.can(scope))

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, CAMPAIGNS_READ)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._allowed(request, CAMPAIGNS_MANAGE)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, CAMPAIGNS_MANAGE)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, CAMPAIGNS_MANAGE)


class ReferralRewardInline(ManagedInline):
    model = ReferralReward
    formset = RewardFormSet
    fields = REWARD_FIELDS
    ordering = ("position", "id")


class LotteryPrizeInline(ManagedInline):
    model = LotteryPrize
    formset = PrizeFormSet
    fields = (*PRIZE_FIELDS, "awarded")
    readonly_fields = ("awarded",)
    ordering = ("position", "id")


def _saved_with_rows(request, form, formsets, change: bool, names: tuple[str, ...], write):
    """Save the parent and its rows in one service call (``write(actor, obj, changes,
    rows)``), then make the admin's objects stand for what it saved."""
    tenant = Tenant.objects.get(pk=form.instance.tenant_id or require_tenant_id())
    changes = {name: form.cleaned_data[name] for name in names
               if name in form.cleaned_data and (not change or name in form.changed_data)}
    rows = next(fs for fs in formsets if isinstance(fs, ServiceCheckedFormSet)).rows()
    with tenant_scope(tenant):
        current = type(form.instance).objects.get(pk=form.instance.pk) if change else None
        saved = write(actor_for_write(request, tenant), current, changes, rows)
    adopt(form.instance, saved)
    for formset in formsets:  # what the change message reads of a saved formset
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


@admin.register(ReferralCampaign)
class ReferralCampaignAdmin(TenantScopedAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    view_scope = CAMPAIGNS_READ
    add_scope = change_scope = CAMPAIGNS_MANAGE
    inlines = [ReferralRewardInline]
    list_display = ("name", "is_active", "starts_at", "ends_at", "success_event", "inviter_cap",
                    "velocity_per_hour")
    list_filter = ("is_active", "success_event")
    search_fields = ("name",)
    fields = CAMPAIGN_FIELDS

    def save_model(self, request, obj, form, change) -> None:
        """Saved with its rewards in ``save_related``, in one service call."""

    def save_related(self, request, form, formsets, change) -> None:
        _saved_with_rows(request, form, formsets, change, CAMPAIGN_FIELDS,
                         lambda actor, current, changes, rows: referral_campaign_save(
                             actor=actor, campaign=current, changes=changes,
                             rewards=[{k: v for k, v in row.items() if k != "id"}
                                      for row in rows]))


@admin.register(Lottery)
class LotteryAdmin(TenantScopedAdmin):
    view_scope = CAMPAIGNS_READ
    add_scope = change_scope = CAMPAIGNS_MANAGE
    inlines = [LotteryPrizeInline]
    list_display = ("name", "is_active", "starts_at", "ends_at", "points_cost", "daily_limit",
                    "total_limit", "tier_weighted")
    list_filter = ("is_active",)
    search_fields = ("name",)
    fields = LOTTERY_FIELDS

    def save_model(self, request, obj, form, change) -> None:
        """Saved with its prizes in ``save_related``, in one service call."""

    def save_related(self, request, form, formsets, change) -> None:
        _saved_with_rows(request, form, formsets, change, LOTTERY_FIELDS,
                         lambda actor, current, changes, rows: lottery_save(
                             actor=actor, lottery=current, changes=changes, prizes=rows))


class CampaignsReadOnlyAdmin(ReadOnlyAdmin):
    view_scope = CAMPAIGNS_READ


@admin.register(ReferralInvite)
class ReferralInviteAdmin(MemberVisibleMixin, CampaignsReadOnlyAdmin):
    member_path = "inviter"
    list_display = ("code", "campaign", "inviter", "clicks", "qr_expires_at", "created_at")
    list_select_related = ("campaign", "inviter")
    search_fields = ("=code",)
    fields = ("campaign", "inviter", "code", "clicks", "qr_ticket", "qr_url", "qr_expires_at",
              "qr_generation", "qr_channel_code_id", "created_at")


@admin.register(ReferralAttribution)
class ReferralAttributionAdmin(MemberVisibleMixin, CampaignsReadOnlyAdmin):
    member_path = "inviter"
    list_display = ("occurred_at", "campaign", "inviter", "invitee", "status", "reason",
                    "registered_at", "first_purchase_at", "successful_at")
    list_filter = ("status", "reason", "campaign")
    list_select_related = ("campaign", "inviter", "invitee")
    fields = ("campaign", "invite", "inviter", "invitee", "status", "reason", "source",
              "is_new_member", "occurred_at", "followed_at", "registered_at",
              "first_purchase_at", "first_purchase_fen", "successful_at", "reviewed_by",
              "reviewed_at", "note", "created_at")
    ordering = ("-id",)
    actions = ("approve", "reject")

    def has_review_permission(self, request) -> bool:
        return self._allowed(request, CAMPAIGNS_MANAGE)

    @admin.action(description=_("审核通过（发放奖励）"), permissions=["review"])
    def approve(self, request, queryset) -> None:
        self._review(request, queryset, approve=True)

    @admin.action(description=_("审核不通过"), permissions=["review"])
    def reject(self, request, queryset) -> None:
        self._review(request, queryset, approve=False)

    def _review(self, request, queryset, *, approve: bool) -> None:
        done, refused = 0, []
        for attribution in queryset.order_by("id"):
            tenant = Tenant.objects.get(pk=attribution.tenant_id)
            try:
                with tenant_scope(tenant):
                    referral_attribution_review(actor=actor_for_write(request, tenant),
                                                attribution=attribution, approve=approve)
            except ApplicationError as exc:
                refused.append(f"#{attribution.pk}: {exc.detail}")
            else:
                done += 1
        self.message_user(request, _("已审核 %(count)d 条。") % {"count": done})
        if refused:
            self.message_user(request, "; ".join(refused), level=messages.WARNING)


@admin.register(ReferralGrant)
class ReferralGrantAdmin(MemberVisibleMixin, CampaignsReadOnlyAdmin):
    list_display = ("created_at", "campaign", "member", "event", "beneficiary", "kind",
                    "outcome")
    list_filter = ("outcome", "event", "kind")
    list_select_related = ("campaign", "member")
    fields = ("campaign", "attribution", "reward_id", "event", "beneficiary", "member", "kind",
              "params", "key", "outcome", "detail", "created_at")
    ordering = ("-id",)


@admin.register(LotteryDraw)
class LotteryDrawAdmin(MemberVisibleMixin, CampaignsReadOnlyAdmin):
    list_display = ("created_at", "lottery", "member", "prize", "outcome", "source",
                    "points_spent", "weight_multiplier")
    list_filter = ("outcome", "source", "lottery")
    list_select_related = ("lottery", "member", "prize")
    fields = ("lottery", "member", "prize", "outcome", "source", "product_code",
              "points_spent", "weight_multiplier", "reward_outcome", "idempotency_key",
              "created_at")
    ordering = ("-id",)
