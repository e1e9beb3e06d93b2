"""Consent per purpose, the personal-data export and erasure of one member (PIPL)."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from members.api.members import MemberApiBase
from members.models import ConsentPurpose, ConsentSource
from members.selectors import member_consent_state, member_consents
from members.services.consent import consent_record
from members.services.privacy import member_erase, member_personal_data
from scrm.access import MEMBERS_READ, MEMBERS_WRITE, PRIVACY_MANAGE
from scrm.api.errors import ApplicationError
from scrm.api.idempotency import idempotent
from scrm.api.serializers import DateTimeField, StrictSerializer


class ConsentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    source = serializers.CharField()
    actor = serializers.CharField()
    created_at = DateTimeField()


class ConsentStateOutput(serializers.Serializer):
    marketing = serializers.BooleanField()
    profiling = serializers.BooleanField()
    updated_at = DateTimeField(allow_null=True)


class ConsentsOutput(serializers.Serializer):
    current = ConsentStateOutput()
    history = ConsentOutput(many=True)


class MemberConsentsApi(MemberApiBase):
    required_scopes = {"GET": MEMBERS_READ, "POST": MEMBERS_WRITE}

    class ConsentInput(StrictSerializer):
        purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
        granted = serializers.BooleanField()
        source = serializers.ChoiceField(choices=ConsentSource.choices, required=False,
                                         help_text=_("默认：开放接口"))

        class Meta:
            ref_name = "MemberConsentInput"

    def _answer(self, member, code=status.HTTP_200_OK) -> Response:
        return Response(ConsentsOutput({"current": member_consent_state(member=member),
                                        "history": member_consents(member=member)}).data,
                        status=code)

    @extend_schema(responses=ConsentsOutput, operation_id="members_consents_list")
    def get(self, request, member_id: int):
        return self._answer(self.get_member(member_id))

    @extend_schema(request=ConsentInput, responses={201: ConsentsOutput},
                   operation_id="members_consents_create")
    @idempotent
    def post(self, request, member_id: int):
        data = self.ConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = self.get_member(member_id)
        consent_record(actor=self.actor, member=member, **data.validated_data)
        return self._answer(self.get_member(member_id), status.HTTP_201_CREATED)


class MemberPersonalDataApi(MemberApiBase):
    """Everything held about the member, in full (their own copy): owners only, audited."""

    required_scopes = {"GET": PRIVACY_MANAGE}

    @extend_schema(responses=inline_serializer("MemberPersonalData", {
        "member_id": serializers.IntegerField(), "exported_at": DateTimeField(),
        "profile": serializers.DictField()}), operation_id="members_personal_data")
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        return Response(member_personal_data(actor=self.actor, member=member,
                                             ip=request.META.get("REMOTE_ADDR")))


class MemberEraseApi(MemberApiBase):
    """Erase the member's personal data; orders, points and coupons stay, anonymised."""

    required_scopes = {"POST": PRIVACY_MANAGE}

    class EraseInput(StrictSerializer):
        confirm = serializers.CharField(help_text=_('必须为 "ERASE"（确认删除个人信息）'))

        class Meta:
            ref_name = "MemberEraseInput"

    @extend_schema(request=EraseInput, responses=inline_serializer("MemberErased", {
        "member_id": serializers.IntegerField(), "already_erased": serializers.BooleanField(),
        "erased_at": DateTimeField(), "removed": serializers.DictField(
            required=False)}), operation_id="members_erase")
    def post(self, request, member_id: int):
        data = self.EraseInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["confirm"] != "ERASE":
            raise ApplicationError(_('请将 confirm 设为 "ERASE" 以确认删除。'),
                                   code="confirmation_required",
                                   fields={"confirm": [_('必须为 "ERASE"')]})
        member = self.get_member(member_id)
        return Response(member_erase(actor=self.actor, member=member,
                                     ip=request.META.get("REMOTE_ADDR")))
