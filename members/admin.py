"""Members, identities, timeline and orders in the admin: read-mostly, tenant-scoped, and
narrowed to a guide's or store manager's own members.  Phone numbers appear masked only."""

from decimal import Decimal

from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.identities import normalize_identity
from members.models import (
    APP_SCOPED_KINDS,
    IdentityKind,
    Member,
    MemberConsent,
    MemberIdentity,
    MemberMerge,
    MemberStats,
    Order,
    OrderLine,
    Refund,
    TimelineEvent,
)
from members.selectors import member_visible
from members.services import member_update
from members.services.members import PROFILE_FIELDS
from scrm.access import MEMBERS_WRITE, ORDERS_READ, Actor
from scrm.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    TenantScopedAdmin,
    actor_for_write,
    adopt,
    request_actor,
)
from scrm.api.errors import ApplicationError
from scrm.models import StaffMembership
from scrm.tenancy import tenant_scope

# App-scoped ids (openids, partner ids) are searched across every app: this app id only
# satisfies validation.
ANY_APP = "*"


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{Decimal(fen) / 100:,.2f}"


def identity_search_condition(term: str) -> models.Q | None:
    """Every identity an exact search term could be, normalised the way upserts store it:
    phones and emails become their blind index, openids stay as they are."""
    condition = models.Q()
    for kind in IdentityKind.values:
        try:
            identity = normalize_identity(kind, term, ANY_APP)
        except ApplicationError:
            continue
        if kind in APP_SCOPED_KINDS:
            condition |= models.Q(kind=kind, value=identity.value)
        else:
            condition |= models.Q(kind=kind, app_id="", value=identity.value)
    return condition or None


class MemberVisibleMixin:
    """Rows reach a member through ``member_path``; guides and store managers see only the
    rows of members ``member_visible`` gives them."""

    member_path = "member"

    def restrict_to_actor(self, queryset: models.QuerySet, actor: Actor) -> models.QuerySet:
        if actor.guide_id is None and actor.store_id is None:
            return queryset
        return queryset.filter(**{f"{self.member_path}__in": member_visible(actor=actor)})


class MemberIdentityInline(ReadOnlyInline):
    model = MemberIdentity
    fields = ("kind", "app_id", "display", "created_at")
    ordering = ("id",)
    verbose_name_plural = _("身份")


class MemberStatsInline(ReadOnlyInline):
    model = MemberStats
    fields = ("order_count", "total_spent", "refunded", "first_order_at", "last_order_at")
    view_scope = ORDERS_READ

    @admin.display(description=_("累计消费"))
    def total_spent(self, obj: MemberStats) -> str:
        return yuan(obj.total_spent_fen)

    @admin.display(description=_("累计退款"))
    def refunded(self, obj: MemberStats) -> str:
        return yuan(obj.refunded_fen)


@admin.register(Member)
class MemberAdmin(MemberVisibleMixin, TenantScopedAdmin):
    change_scope = delete_scope = MEMBERS_WRITE
    list_display = (
        "member_no",
        "name",
        "phone_masked",
        "gender",
        "city",
        "store",
        "guide",
        "source_channel",
        "status",
        "created_at",
    )
    list_filter = ("status", "gender", "source_channel", "store", "marketing_consent")
    list_select_related = ("store", "guide__user")
    search_fields = ("name",)
    search_help_text = _("按姓名搜索；输入完整的手机号、邮箱或 openid 可精确查找。")
    ordering = ("-created_at",)
    inlines = (MemberIdentityInline, MemberStatsInline)
    fields = (
        "member_no",
        "name",
        "gender",
        "birthday",
        "province",
        "city",
        "phone_masked",
        "source_channel",
        "store",
        "guide",
        "marketing_consent",
        "consent_updated_at",
        "status",
        "merged_into",
        "first_touch",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "member_no",
        "phone_masked",
        "source_channel",
        "consent_updated_at",
        "status",
        "merged_into",
        "first_touch",
        "created_at",
        "updated_at",
    )

    def restrict_to_actor(self, queryset: models.QuerySet, actor: Actor) -> models.QuerySet:
        if actor.guide_id is None and actor.store_id is None:
            return queryset
        return queryset & member_visible(actor=actor)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        actor = request_actor(request)
        if actor is not None and actor.guide_id is not None:
            return (*readonly, "store", "guide")
        if actor is not None and actor.store_id is not None:
            return (*readonly, "store")
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "guide":
            queryset = StaffMembership.objects.filter(is_active=True).select_related("user")
            actor = request_actor(request)
            if actor is not None and actor.store_id is not None:
                queryset = queryset.filter(store_id=actor.store_id)
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        condition = identity_search_condition(search_term.strip()) if search_term else None
        if condition is None:
            return results, may_have_duplicates
        member_ids = MemberIdentity.objects.filter(condition).values("member_id")
        return results | queryset.filter(pk__in=member_ids), may_have_duplicates

    def save_model(self, request, obj, form, change) -> None:
        # The form has already copied its values onto obj; the service compares the stored
        # row with the profile to find what changed (and writes the timeline).
        stored = Member.objects.select_related("tenant").get(pk=obj.pk)
        profile = {
            name: form.cleaned_data[name] for name in form.changed_data if name in PROFILE_FIELDS
        }
        with tenant_scope(stored.tenant_id):
            member_update(
                actor=actor_for_write(request, stored.tenant), member=stored, profile=profile
            )
        adopt(obj, stored)


@admin.register(MemberIdentity)
class MemberIdentityAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    list_display = ("member", "kind", "app_id", "display", "created_at")
    list_filter = ("kind",)
    list_select_related = ("member",)
    fields = ("member", "kind", "app_id", "display", "created_at")
    ordering = ("-created_at",)


@admin.register(MemberMerge)
class MemberMergeAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    member_path = "survivor"
    list_display = ("survivor", "merged", "reason", "actor", "created_at")
    list_filter = ("reason",)
    list_select_related = ("survivor", "merged")
    fields = ("survivor", "merged", "reason", "actor", "moved", "created_at")
    ordering = ("-created_at",)


@admin.register(MemberConsent)
class MemberConsentAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    """The consent history: written by the consent service only, never changed."""

    list_display = ("member", "purpose", "granted", "source", "actor", "created_at")
    list_filter = ("purpose", "granted", "source")
    list_select_related = ("member",)
    fields = ("member", "purpose", "granted", "source", "actor", "created_at")
    ordering = ("-created_at",)


@admin.register(TimelineEvent)
class TimelineEventAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    list_display = ("member", "kind_label", "occurred_at", "actor")
    list_filter = ("kind",)
    list_select_related = ("member",)
    fields = ("member", "kind_label", "occurred_at", "data", "actor")
    ordering = ("-occurred_at",)

    @admin.display(description=_("事件"), ordering="kind")
    def kind_label(self, obj: TimelineEvent) -> str:
        labels = dict(TimelineEvent.Kind.choices)
        return str(labels.get(obj.kind, obj.kind))


@admin.register(MemberStats)
class MemberStatsAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    view_scope = ORDERS_READ
    list_display = (
        "member",
        "order_count",
        "total_spent",
        "refunded",
        "first_order_at",
        "last_order_at",
    )
    list_select_related = ("member",)
    fields = ("member", "order_count", "total_spent", "refunded", "first_order_at", "last_order_at")
    ordering = ("-member_id",)

    @admin.display(description=_("累计消费"), ordering="total_spent_fen")
    def total_spent(self, obj: MemberStats) -> str:
        return yuan(obj.total_spent_fen)

    @admin.display(description=_("累计退款"), ordering="refunded_fen")
    def refunded(self, obj: MemberStats) -> str:
        return yuan(obj.refunded_fen)


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("sku", "product", "category", "quantity", "price")
    view_scope = ORDERS_READ
    ordering = ("id",)

    @admin.display(description=_("单价"))
    def price(self, obj: OrderLine) -> str:
        return yuan(obj.price_fen)


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("refund_no", "amount", "reason", "created_at")
    view_scope = ORDERS_READ
    ordering = ("id",)

    @admin.display(description=_("退款金额"))
    def amount(self, obj: Refund) -> str:
        return yuan(obj.amount_fen)


@admin.register(Order)
class OrderAdmin(MemberVisibleMixin, ReadOnlyAdmin):
    """Orders change only through ingest and refunds (member stats depend on them)."""

    view_scope = ORDERS_READ
    list_display = (
        "order_no",
        "channel",
        "member",
        "store",
        "paid_at",
        "amount",
        "refunded",
        "status",
    )
    list_filter = ("status", "channel", "store")
    list_select_related = ("member", "store")
    search_fields = ("=order_no",)
    ordering = ("-paid_at",)
    inlines = (OrderLineInline, RefundInline)
    fields = (
        "order_no",
        "channel",
        "member",
        "store",
        "paid_at",
        "amount",
        "refunded",
        "status",
        "created_at",
    )

    @admin.display(description=_("实付金额"), ordering="amount_fen")
    def amount(self, obj: Order) -> str:
        return yuan(obj.amount_fen)

    @admin.display(description=_("已退金额"), ordering="refunded_fen")
    def refunded(self, obj: Order) -> str:
        return yuan(obj.refunded_fen)
