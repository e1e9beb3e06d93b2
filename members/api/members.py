from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from members import selectors, services
from members.api import serializers as io
from members.identities import normalize_identities
from members.services.orders import store_by_code
from scrm.access import MEMBERS_READ, MEMBERS_WRITE
from scrm.api.errors import ApplicationError, Conflict
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.serializers import DateTimeField, shared
from scrm.api.views import TenantApiView
from scrm.models import StaffMembership
from scrm.tenancy import require_tenant_id

MEMBER_SCOPES = {"GET": MEMBERS_READ, "*": MEMBERS_WRITE}


def profile_from_input(data: dict) -> dict:
    """Turn API references (store code, guide id) into rows of the current tenant."""
    profile = {key: value for key, value in data.items() if key != "identities"}
    if "store" in profile:
        profile["store"] = store_by_code(profile["store"])
    if profile.get("guide") is not None:
        guide = StaffMembership.objects.filter(
            pk=profile["guide"], tenant_id=require_tenant_id()
        ).first()
        if guide is None:
            raise ApplicationError(
                _("未知导购：%(id)s") % {"id": profile["guide"]},
                code="unknown_guide",
                fields={"guide": [_("未知导购")]},
            )
        profile["guide"] = guide
    return profile


def reload(actor, member_id: int):
    return selectors.member_get(actor=actor, member_id=member_id)


def upserted(actor, member, outcome: str):
    """The upserted member as ``member_get`` would load it: the service hands it back so,
    except after a merge, which moves too much to patch up."""
    return reload(actor, member.pk) if outcome == "merged" else member


class MemberApiBase(TenantApiView):
    required_scopes = MEMBER_SCOPES

    def get_member(self, member_id: int):
        member = selectors.member_get(actor=self.actor, member_id=member_id)
        if member is None:
            raise NotFound(_("未找到。"))
        return member


MEMBER_FILTERS = [
    OpenApiParameter("identity_kind", str, description="Look up by identity kind"),
    OpenApiParameter("identity_value", str, description="… and value (phone, openid …)"),
    OpenApiParameter("identity_app_id", str, description="… and app id, for openids"),
    OpenApiParameter("store", str, description="Store code"),
    OpenApiParameter("guide", int, description="Guide (staff id)"),
    OpenApiParameter("created_after", str, description="ISO 8601 time"),
    OpenApiParameter("created_before", str, description="ISO 8601 time"),
    OpenApiParameter("include_merged", bool),
]


class MemberFilterInput(serializers.Serializer):
    identity_kind = serializers.CharField(required=False)
    identity_value = serializers.CharField(required=False)
    identity_app_id = serializers.CharField(required=False)
    store = serializers.CharField(required=False)
    guide = serializers.IntegerField(required=False)
    created_after = DateTimeField(required=False)
    created_before = DateTimeField(required=False)
    include_merged = serializers.BooleanField(required=False)


class MemberListCreateApi(MemberApiBase):
    pagination_class = CursorPagination
    @extend_schema(
        parameters=MEMBER_FILTERS, responses=io.MemberOutput(many=True), operation_id="members_list"
    )
    def get(self, request):
        filters = MemberFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.member_list(actor=self.actor, filters=filters.validated_data)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(io.MemberOutput(page, many=True).data)

    @extend_schema(
        request=io.MemberUpsertInput,
        responses={201: io.MemberOutput},
        operation_id="members_create",
    )
    @idempotent
    def post(self, request):
        data = io.MemberUpsertInput(data=request.data)
        data.is_valid(raise_exception=True)
        identities = normalize_identities(data.validated_data["identities"])
        taken = services.members.identities_lookup(identities)
        if taken:
            raise Conflict(
                _("该身份已属于会员 %(id)s，请使用 upsert 接口。") % {"id": taken[0].member_id},
                code="member_exists",
            )
        member, _outcome = services.member_upsert(
            actor=self.actor,
            identities=data.validated_data["identities"],
            profile=profile_from_input(data.validated_data),
        )
        return Response(
            io.MemberOutput(reload(self.actor, member.pk)).data, status=status.HTTP_201_CREATED
        )


class MemberDetailApi(MemberApiBase):
    @extend_schema(responses=io.MemberOutput, operation_id="members_retrieve")
    def get(self, request, member_id: int):
        return Response(io.MemberOutput(self.get_member(member_id)).data)

    @extend_schema(
        request=io.ProfileInput, responses=io.MemberOutput, operation_id="members_partial_update"
    )
    def patch(self, request, member_id: int):
        member = self.get_member(member_id)
        if member.status == member.Status.ERASED:
            raise Conflict(_("该会员的个人信息已删除，不能修改。"), code="member_erased")
        if member.status != member.Status.ACTIVE:
            raise Conflict(
                _("会员已合并到 %(id)s，不能修改。") % {"id": member.merged_into_id},
                code="member_merged",
            )
        data = io.ProfileInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.member_update(
            actor=self.actor, member=member, profile=profile_from_input(data.validated_data)
        )
        return Response(io.MemberOutput(reload(self.actor, member.pk)).data)


class MemberUpsertApi(MemberApiBase):
    @extend_schema(
        request=io.MemberUpsertInput,
        responses={200: io.MemberOutput, 201: io.MemberOutput},
        operation_id="members_upsert",
    )
    @idempotent
    def post(self, request):
        data = shared(io.MemberUpsertInput).run_validation(request.data)
        member, outcome = services.member_upsert(
            actor=self.actor, identities=data["identities"], profile=profile_from_input(data)
        )
        body = shared(io.MemberOutput).to_representation(upserted(self.actor, member, outcome))
        body["outcome"] = outcome
        code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
        return Response(body, status=code)


class MemberMergeApi(MemberApiBase):
    class MergeInput(serializers.Serializer):
        member_id = serializers.IntegerField(help_text=_("被合并到本会员的会员 ID"))

        class Meta:
            ref_name = "MemberMergeInput"

    @extend_schema(request=MergeInput, responses=io.MemberOutput, operation_id="members_merge")
    @idempotent
    def post(self, request, member_id: int):
        data = self.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        survivor = self.get_member(member_id)
        merged = self.get_member(data.validated_data["member_id"])
        services.member_merge(actor=self.actor, survivor=survivor, merged=merged)
        return Response(io.MemberOutput(reload(self.actor, survivor.pk)).data)


class MemberTimelineApi(MemberApiBase):
    pagination_class = CursorPagination
    @extend_schema(responses=io.TimelineOutput(many=True), operation_id="members_timeline")
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        paginator = CursorPagination()
        paginator.ordering = ("-occurred_at", "-id")
        page = paginator.paginate_queryset(
            selectors.member_timeline(member=member), request, view=self
        )
        return paginator.get_paginated_response(io.TimelineOutput(page, many=True).data)


class MemberPhoneApi(MemberApiBase):
    """The full phone number, for roles allowed to see personal data."""

    required_scopes = {"GET": "pii:read"}

    @extend_schema(
        responses=inline_serializer("MemberPhone", {"phone": serializers.CharField()}),
        operation_id="members_phone",
    )
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        return Response(
            {"phone": services.members.member_phone_reveal(
                actor=self.actor, member=member, ip=request.META.get("REMOTE_ADDR"))}
        )
