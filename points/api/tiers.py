"""Tiers API: programmes and their levels, growth grants, a member's standing and history,
manual overrides, and the benefits partners read at checkout."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from points import selectors
from points.api.views import PointsApiBase, ledger_key
from points.models import GrowthSource, TierLevel, TierProgram
from points.services.growth import growth_grant, member_tier_override
from points.services.tiers import tier_program_save
from scrm.access import POINTS_ADJUST, POINTS_MANAGE, POINTS_READ, POINTS_WRITE
from scrm.api.errors import Conflict
from scrm.api.idempotency import idempotent
from scrm.api.serializers import DateTimeField, StrictSerializer

BENEFIT_FIELDS = ("discount_percent", "points_multiplier", "birthday_points", "birthday_coupon",
                  "free_shipping", "exclusive_coupons", "lottery_weight", "priority_service")


class LevelInput(StrictSerializer):
    code = serializers.SlugField(max_length=32)
    name = serializers.CharField(max_length=32)
    threshold = serializers.IntegerField(min_value=0, max_value=10**15)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    discount_percent = serializers.IntegerField(required=False, min_value=1, max_value=100)
    points_multiplier = serializers.DecimalField(required=False, max_digits=4, decimal_places=2,
                                                 min_value=0, max_value=20)
    birthday_points = serializers.IntegerField(required=False, min_value=0, max_value=10**8)
    birthday_coupon = serializers.CharField(required=False, allow_blank=True, max_length=64)
    free_shipping = serializers.BooleanField(required=False)
    exclusive_coupons = serializers.ListField(child=serializers.CharField(max_length=64),
                                              required=False, max_length=50)
    lottery_weight = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    priority_service = serializers.BooleanField(required=False)


class ProgramInput(StrictSerializer):
    name = serializers.CharField(max_length=64)
    brand = serializers.CharField(required=False, allow_null=True, max_length=64,
                                  help_text=_("品牌编码；留空表示整个租户"))
    basis = serializers.ChoiceField(choices=TierProgram.Basis.choices, required=False)
    window_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    review_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    protection_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    max_downgrade_steps = serializers.IntegerField(required=False, min_value=0, max_value=20)
    growth_per_yuan = serializers.DecimalField(required=False, max_digits=8, decimal_places=2,
                                               min_value=0)
    growth_checkin = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    growth_review = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    growth_referral = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    is_active = serializers.BooleanField(required=False)
    levels = LevelInput(many=True, required=False, help_text=_("从低到高；门槛须逐级递增"))


class LevelOutput(serializers.ModelSerializer):
    class Meta:
        model = TierLevel
        fields = ("id", "rank", "code", "name", "threshold", "description", *BENEFIT_FIELDS,
                  "tag")


class ProgramOutput(serializers.ModelSerializer):
    brand = serializers.SlugRelatedField(slug_field="code", read_only=True)
    levels = LevelOutput(many=True, read_only=True)

    class Meta:
        model = TierProgram
        fields = ("id", "name", "brand", "basis", "window_days", "review_days",
                  "protection_days", "max_downgrade_steps", "growth_per_yuan", "growth_checkin",
                  "growth_review", "growth_referral", "is_active", "levels", "created_at",
                  "updated_at")


class LevelBrief(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()


class TierChangeOutput(serializers.Serializer):
    kind = serializers.CharField()
    from_level = LevelBrief(allow_null=True)
    to_level = LevelBrief(allow_null=True)
    qualifying_value = serializers.IntegerField()
    reason = serializers.CharField()
    operator = serializers.CharField()
    created_at = DateTimeField()


class StandingOutput(serializers.Serializer):
    program = serializers.IntegerField(source="program.pk")
    program_name = serializers.CharField(source="program.name")
    basis = serializers.CharField(source="program.basis")
    level = LevelBrief(allow_null=True)
    growth_total = serializers.IntegerField()
    qualifying_value = serializers.IntegerField()
    next_level = LevelBrief(allow_null=True)
    to_next_level = serializers.IntegerField(allow_null=True)
    achieved_at = DateTimeField(allow_null=True)
    protected_until = DateTimeField(allow_null=True)
    next_review_at = DateTimeField(allow_null=True)
    is_override = serializers.BooleanField()
    override_reason = serializers.CharField()
    override_until = DateTimeField(allow_null=True)
    history = TierChangeOutput(many=True)


class MemberTierOutput(serializers.Serializer):
    member = serializers.IntegerField()
    tiers = StandingOutput(many=True)


class BenefitsOutput(serializers.Serializer):
    discount_percent = serializers.IntegerField()
    points_multiplier = serializers.DecimalField(max_digits=4, decimal_places=2)
    birthday_points = serializers.IntegerField()
    birthday_coupon = serializers.CharField()
    free_shipping = serializers.BooleanField()
    exclusive_coupons = serializers.ListField(child=serializers.CharField())
    lottery_weight = serializers.IntegerField()
    priority_service = serializers.BooleanField()


class ProgramBenefitsOutput(serializers.Serializer):
    program = serializers.IntegerField()
    program_name = serializers.CharField()
    brand = serializers.CharField(allow_null=True)
    level = LevelBrief(allow_null=True)
    benefits = BenefitsOutput()


class MemberBenefitsOutput(serializers.Serializer):
    member = serializers.IntegerField()
    level = LevelBrief(allow_null=True, help_text=_("整个租户的等级体系中的等级"))
    benefits = BenefitsOutput(help_text=_("整个租户的等级体系中的权益；无等级时为默认值"))
    programs = ProgramBenefitsOutput(many=True)


class GrowthInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=-10**8, max_value=10**8)
    source = serializers.ChoiceField(choices=[GrowthSource.CAMPAIGN, GrowthSource.REFERRAL,
                                              GrowthSource.REVIEW, GrowthSource.ADJUST])
    reason = serializers.CharField(max_length=255)
    program = serializers.IntegerField(required=False, min_value=1,
                                       help_text=_("默认整个租户的等级体系"))

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError(_("不能为 0。"))
        return value


class GrowthOutput(serializers.Serializer):
    id = serializers.IntegerField(source="entry.pk")
    program = serializers.IntegerField(source="entry.program_id")
    member = serializers.IntegerField(source="entry.member_id")
    points = serializers.IntegerField(source="entry.points")
    source = serializers.CharField(source="entry.source")
    growth_total = serializers.IntegerField()
    level = LevelBrief(allow_null=True)


class OverrideInput(StrictSerializer):
    level = serializers.CharField(allow_null=True, max_length=32,
                                  help_text=_("等级编码；null 表示取消等级"))
    reason = serializers.CharField(max_length=255)
    until = DateTimeField(required=False, allow_null=True)
    program = serializers.IntegerField(required=False, min_value=1)


def _program(program_id: int | None) -> TierProgram:
    """The programme named, or the tenant-wide one."""
    if program_id is not None:
        program = TierProgram.objects.filter(pk=program_id).first()
        if program is None:
            raise NotFound(_("未找到等级体系。"))
        return program
    program = TierProgram.objects.filter(brand__isnull=True).first()
    if program is None:
        raise Conflict(_("尚未设置等级体系。"), code="no_tier_program")
    return program


def _program_changes(values: dict) -> tuple[dict, list | None]:
    values = dict(values)
    levels = values.pop("levels", None)
    return values, [dict(level) for level in levels] if levels is not None else None


class TierProgramListCreateApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ, "POST": POINTS_MANAGE}

    @extend_schema(responses=ProgramOutput(many=True), operation_id="tier_programs_list")
    def get(self, request):
        programs = TierProgram.objects.select_related("brand").prefetch_related("levels") \
            .order_by("pk")
        return Response(ProgramOutput(programs, many=True).data)

    @extend_schema(request=ProgramInput, responses={201: ProgramOutput},
                   operation_id="tier_programs_create")
    @idempotent
    def post(self, request):
        data = ProgramInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes, levels = _program_changes(data.validated_data)
        program = tier_program_save(actor=self.actor, changes=changes, levels=levels)
        program = TierProgram.objects.prefetch_related("levels").get(pk=program.pk)
        return Response(ProgramOutput(program).data, status=status.HTTP_201_CREATED)


class TierProgramDetailApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ, "PATCH": POINTS_MANAGE}

    @extend_schema(responses=ProgramOutput, operation_id="tier_programs_retrieve")
    def get(self, request, program_id: int):
        return Response(ProgramOutput(_program(program_id)).data)

    @extend_schema(request=ProgramInput(partial=True), responses=ProgramOutput,
                   operation_id="tier_programs_update")
    def patch(self, request, program_id: int):
        program = _program(program_id)
        data = ProgramInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes, levels = _program_changes(data.validated_data)
        program = tier_program_save(actor=self.actor, program=program, changes=changes,
                                    levels=levels)
        program = TierProgram.objects.prefetch_related("levels").get(pk=program.pk)
        return Response(ProgramOutput(program).data)


class GrowthGrantApi(PointsApiBase):
    """Growth value for what the SCRM does not see itself: a campaign, a referral, a review
    on another platform; negative to correct.  Moves the member up when it qualifies them."""

    required_scopes = {"POST": POINTS_WRITE}

    @extend_schema(request=GrowthInput, responses={201: GrowthOutput, 200: GrowthOutput},
                   operation_id="tier_growth_grant")
    @idempotent
    def post(self, request):
        data = GrowthInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = growth_grant(
            actor=self.actor, program=_program(values.get("program")),
            member=self.get_member(values["member"]), points=values["points"],
            source=values["source"], reason=values["reason"],
            idempotency_key=ledger_key(request))
        return Response(GrowthOutput(result).data,
                        status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class MemberTierApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ}

    @extend_schema(responses=MemberTierOutput, operation_id="member_tier_retrieve")
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        return Response(MemberTierOutput({
            "member": member.pk, "tiers": selectors.member_standings(member_id=member.pk),
        }).data)


class MemberTierOverrideApi(PointsApiBase):
    required_scopes = {"POST": POINTS_ADJUST}

    @extend_schema(request=OverrideInput, responses=MemberTierOutput,
                   operation_id="member_tier_override")
    @idempotent
    def post(self, request, member_id: int):
        member = self.get_member(member_id)
        data = OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        program = _program(values.get("program"))
        level = None
        if values["level"] is not None:
            level = TierLevel.objects.filter(program=program, code=values["level"]).first()
            if level is None:
                raise NotFound(_("未找到等级 %(code)s。") % {"code": values["level"]})
        member_tier_override(actor=self.actor, program=program, member=member, level=level,
                             reason=values["reason"], until=values.get("until"),
                             ip=request.META.get("REMOTE_ADDR"))
        return Response(MemberTierOutput({
            "member": member.pk, "tiers": selectors.member_standings(member_id=member.pk),
        }).data)


class MemberBenefitsApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ}

    @extend_schema(responses=MemberBenefitsOutput, operation_id="member_benefits_retrieve")
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        return Response(MemberBenefitsOutput(selectors.member_benefits(member_id=member.pk)).data)
