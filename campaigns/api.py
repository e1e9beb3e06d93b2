"""Campaigns API: campaigns with their actions, launching and pausing them, their results and
deliveries, an estimate before launch, automation rules, and the contact policy."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns.models import ActionKind, AutomationRule, Campaign, CampaignRun, Delivery
from campaigns.services import automation, campaigns, policy, results
from scrm.access import CAMPAIGNS_MANAGE, CAMPAIGNS_READ
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination, paginated_response
from scrm.api.serializers import DateTimeField, LocalTimeField, StrictSerializer
from scrm.api.views import TenantApiView
from tags.models import Segment


class ActionInput(StrictSerializer):
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    params = serializers.DictField(default=dict)


class CampaignInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    segment = serializers.IntegerField(min_value=1)
    schedule = serializers.ChoiceField(choices=Campaign.Schedule.choices, required=False)
    start_at = DateTimeField(required=False, allow_null=True)
    cron = serializers.CharField(required=False, allow_blank=True, max_length=64)
    end_at = DateTimeField(required=False, allow_null=True)
    throttle_per_minute = serializers.IntegerField(required=False, min_value=0,
                                                   max_value=1_000_000)
    respect_quiet_hours = serializers.BooleanField(required=False)
    respect_frequency_cap = serializers.BooleanField(required=False)
    require_consent = serializers.BooleanField(required=False)
    control_percent = serializers.IntegerField(required=False, min_value=0, max_value=50)
    attribution_days = serializers.IntegerField(required=False, min_value=1, max_value=90)
    actions = ActionInput(many=True, required=False)

    def validate_segment(self, value: int) -> Segment:
        segment = Segment.objects.filter(pk=value).first()
        if segment is None:
            raise serializers.ValidationError(_("人群不存在。"))
        return segment


class ActionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    params = serializers.DictField()


class RunOutput(serializers.ModelSerializer):
    class Meta:
        model = CampaignRun
        fields = ("id", "occurrence", "status", "due_at", "next_at", "total", "done", "counts",
                  "error", "started_at", "finished_at")


class CampaignOutput(serializers.ModelSerializer):
    actions = ActionOutput(many=True, read_only=True)
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ("id", "name", "description", "segment", "status", "schedule", "start_at",
                  "cron", "end_at", "throttle_per_minute", "respect_quiet_hours",
                  "respect_frequency_cap", "require_consent", "control_percent",
                  "attribution_days", "actions", "runs", "created_by", "created_at")

    def get_runs(self, obj) -> list[dict]:
        return RunOutput(obj.runs.order_by("-occurrence")[:10], many=True).data


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.prefetch_related("actions").filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(_("未找到活动。"))
    return campaign


def _changes(values: dict) -> tuple[dict, list | None]:
    values = dict(values)
    actions = values.pop("actions", None)
    return values, [dict(a) for a in actions] if actions is not None else None


class CampaignListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": CAMPAIGNS_READ, "POST": CAMPAIGNS_MANAGE}

    @extend_schema(responses=CampaignOutput(many=True), operation_id="campaigns_list")
    def get(self, request):
        queryset = Campaign.objects.prefetch_related("actions")
        if request.query_params.get("status"):
            queryset = queryset.filter(status=request.query_params["status"])
        return paginated_response(self, queryset, CampaignOutput, ordering=("-created_at", "-id"))

    @extend_schema(request=CampaignInput, responses={201: CampaignOutput},
                   operation_id="campaigns_create")
    @idempotent
    def post(self, request):
        data = CampaignInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes, actions = _changes(data.validated_data)
        campaign = campaigns.campaign_save(actor=self.actor, changes=changes, actions=actions)
        return Response(CampaignOutput(_campaign(campaign.pk)).data,
                        status=status.HTTP_201_CREATED)


class CampaignDetailApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "PATCH": CAMPAIGNS_MANAGE}

    @extend_schema(responses=CampaignOutput, operation_id="campaigns_retrieve")
    def get(self, request, campaign_id: int):
        return Response(CampaignOutput(_campaign(campaign_id)).data)

    @extend_schema(request=CampaignInput(partial=True), responses=CampaignOutput,
                   operation_id="campaigns_update")
    def patch(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = CampaignInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes, actions = _changes(data.validated_data)
        campaigns.campaign_save(actor=self.actor, campaign=campaign, changes=changes,
                                actions=actions)
        return Response(CampaignOutput(_campaign(campaign_id)).data)


class CampaignLaunchApi(TenantApiView):
    """Launch a draft: its first run goes now, at ``start_at``, or at the cron's first time."""

    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=None, responses={202: RunOutput}, operation_id="campaigns_launch")
    @idempotent
    def post(self, request, campaign_id: int):
        run = campaigns.campaign_launch(actor=self.actor, campaign=_campaign(campaign_id))
        run.refresh_from_db()
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class CampaignPauseApi(TenantApiView):
    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=None, responses=CampaignOutput, operation_id="campaigns_pause")
    def post(self, request, campaign_id: int):
        campaign = campaigns.campaign_pause(actor=self.actor, campaign=_campaign(campaign_id))
        return Response(CampaignOutput(campaign).data)


class CampaignResumeApi(TenantApiView):
    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=None, responses=CampaignOutput, operation_id="campaigns_resume")
    def post(self, request, campaign_id: int):
        campaign = campaigns.campaign_pause(actor=self.actor, campaign=_campaign(campaign_id),
                                            resume=True)
        return Response(CampaignOutput(campaign).data)


class CampaignCancelApi(TenantApiView):
    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=None, responses=CampaignOutput, operation_id="campaigns_cancel")
    def post(self, request, campaign_id: int):
        campaign = campaigns.campaign_cancel(actor=self.actor, campaign=_campaign(campaign_id))
        return Response(CampaignOutput(campaign).data)


class ResultsOutput(serializers.Serializer):
    deliveries = serializers.DictField(child=serializers.IntegerField())
    reached = serializers.IntegerField()
    control = serializers.IntegerField()
    attribution_days = serializers.IntegerField()
    orders = serializers.IntegerField()
    buyers = serializers.IntegerField()
    gmv_fen = serializers.IntegerField()
    conversion = serializers.FloatField(allow_null=True)
    control_orders = serializers.IntegerField()
    control_buyers = serializers.IntegerField()
    control_gmv_fen = serializers.IntegerField()
    control_conversion = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(allow_null=True)
    incremental_gmv_fen = serializers.IntegerField(allow_null=True)
    coupons = serializers.DictField(child=serializers.IntegerField())
    points = serializers.DictField(child=serializers.IntegerField())
    cost_fen = serializers.IntegerField()
    roi = serializers.FloatField(allow_null=True)


class CampaignResultsApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ}

    @extend_schema(responses=ResultsOutput, operation_id="campaigns_results")
    def get(self, request, campaign_id: int):
        return Response(results.campaign_results(campaign=_campaign(campaign_id)))


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ("id", "run", "member", "status", "results", "created_at")


class CampaignDeliveriesApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": CAMPAIGNS_READ}

    @extend_schema(responses=DeliveryOutput(many=True), operation_id="campaigns_deliveries")
    def get(self, request, campaign_id: int):
        deliveries = Delivery.objects.filter(campaign=_campaign(campaign_id))
        if request.query_params.get("status"):
            deliveries = deliveries.filter(status=request.query_params["status"])
        if request.query_params.get("member"):
            deliveries = deliveries.filter(member_id=request.query_params["member"])
        return paginated_response(self, deliveries, DeliveryOutput, ordering=("-id",))


# Automations


class AutomationInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    trigger = serializers.ChoiceField(choices=AutomationRule.Trigger.choices)
    days = serializers.IntegerField(required=False, min_value=0, max_value=60)
    condition = serializers.JSONField(required=False, allow_null=True)
    action = serializers.ChoiceField(choices=ActionKind.choices)
    params = serializers.DictField(default=dict)
    delay_minutes = serializers.IntegerField(required=False, min_value=0, max_value=60 * 24 * 30)
    respect_frequency_cap = serializers.BooleanField(required=False)
    require_consent = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class AutomationOutput(serializers.ModelSerializer):
    fired = serializers.SerializerMethodField()

    class Meta:
        model = AutomationRule
        fields = ("id", "name", "trigger", "days", "condition", "action", "params",
                  "delay_minutes", "respect_frequency_cap", "require_consent", "is_active", "fired",
                  "created_at")

    def get_fired(self, obj) -> dict[str, int]:
        from django.db.models import Count

        return dict(obj.firings.values("status").annotate(n=Count("pk")).values_list(
            "status", "n"))


class AutomationListCreateApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "POST": CAMPAIGNS_MANAGE}

    @extend_schema(responses=AutomationOutput(many=True), operation_id="automations_list")
    def get(self, request):
        return Response(AutomationOutput(AutomationRule.objects.order_by("-pk"), many=True).data)

    @extend_schema(request=AutomationInput, responses={201: AutomationOutput},
                   operation_id="automations_create")
    @idempotent
    def post(self, request):
        data = AutomationInput(data=request.data)
        data.is_valid(raise_exception=True)
        rule = automation.automation_rule_save(actor=self.actor,
                                               changes=dict(data.validated_data))
        return Response(AutomationOutput(rule).data, status=status.HTTP_201_CREATED)


class AutomationDetailApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "PATCH": CAMPAIGNS_MANAGE}

    def _rule(self, rule_id: int) -> AutomationRule:
        rule = AutomationRule.objects.filter(pk=rule_id).first()
        if rule is None:
            raise NotFound(_("未找到。"))
        return rule

    @extend_schema(responses=AutomationOutput, operation_id="automations_retrieve")
    def get(self, request, rule_id: int):
        return Response(AutomationOutput(self._rule(rule_id)).data)

    @extend_schema(request=AutomationInput(partial=True), responses=AutomationOutput,
                   operation_id="automations_update")
    def patch(self, request, rule_id: int):
        data = AutomationInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = automation.automation_rule_save(actor=self.actor, rule=self._rule(rule_id),
                                               changes=dict(data.validated_data))
        return Response(AutomationOutput(rule).data)


class PolicyInput(StrictSerializer):
    max_touches = serializers.IntegerField(required=False, min_value=0, max_value=1000)
    period_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    quiet_start = LocalTimeField(required=False, allow_null=True)
    quiet_end = LocalTimeField(required=False, allow_null=True)


class PolicyOutput(serializers.Serializer):
    max_touches = serializers.IntegerField()
    period_days = serializers.IntegerField()
    quiet_start = LocalTimeField(allow_null=True)
    quiet_end = LocalTimeField(allow_null=True)


class ContactPolicyApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "PATCH": CAMPAIGNS_MANAGE}

    @extend_schema(responses=PolicyOutput, operation_id="contact_policy_retrieve")
    def get(self, request):
        return Response(PolicyOutput(policy.policy_get()).data)

    @extend_schema(request=PolicyInput, responses=PolicyOutput,
                   operation_id="contact_policy_update")
    def patch(self, request):
        data = PolicyInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(PolicyOutput(policy.policy_update(
            actor=self.actor, changes=dict(data.validated_data))).data)
