"""RFM and lifecycle API: settings, runs (started as jobs), the movement between two runs
and the members of one of its cells, a member's RFM and stage with their history, and the
lifecycle funnel.  Reading needs ``members:read``; changing settings and starting a run
``tags:manage`` (they rewrite system tags)."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns.rfm import selectors
from campaigns.rfm.codes import NONE, SEGMENT_NAMES, Segment
from campaigns.rfm.models import LifecycleConfig, RfmConfig, RfmRun
from campaigns.rfm.services.config import (
    lifecycle_config_get,
    lifecycle_config_update,
    rfm_config_get,
    rfm_config_update,
)
from campaigns.rfm.services.runs import rfm_run_start
from members.selectors import member_visible
from scrm.access import MEMBERS_READ, TAGS_MANAGE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination, paginated_response
from scrm.api.serializers import DateTimeField, JobOutput, StrictSerializer
from scrm.api.views import TenantApiView
from tags.services.segments import segment_page, visible_members

READ_OR_MANAGE = {"GET": MEMBERS_READ, "*": TAGS_MANAGE}
SEGMENT_CHOICES = [*Segment.values, NONE]


def _names() -> dict[str, str]:
    return {**SEGMENT_NAMES, NONE: _("无分群")}


# Settings

class Thresholds(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(child=serializers.IntegerField(min_value=0, max_value=10**15),
                         allow_empty=True, max_length=10, required=False, **kwargs)


class RfmConfigInput(StrictSerializer):
    window_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    scoring = serializers.ChoiceField(choices=RfmConfig.Scoring.choices, required=False)
    r_thresholds = Thresholds(help_text=_("4 个递增的天数：最近一单在 t1 天内得 5 分"))
    f_thresholds = Thresholds(help_text=_("4 个递增的订单数：达到 t4 单得 5 分"))
    m_thresholds = Thresholds(help_text=_("4 个递增的金额（分）：达到 t4 得 5 分"))
    r_high = serializers.IntegerField(required=False, min_value=2, max_value=5)
    f_high = serializers.IntegerField(required=False, min_value=2, max_value=5)
    m_high = serializers.IntegerField(required=False, min_value=2, max_value=5)


class RfmConfigOutput(serializers.ModelSerializer):
    class Meta:
        model = RfmConfig
        fields = ("window_days", "scoring", "r_thresholds", "f_thresholds", "m_thresholds",
                  "r_high", "f_high", "m_high", "updated_at")


class LifecycleConfigInput(StrictSerializer):
    new_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    loyal_orders = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    loyal_spend_fen = serializers.IntegerField(required=False, min_value=0, max_value=10**15)
    loyal_window_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    dormant_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    lost_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)


class LifecycleConfigOutput(serializers.ModelSerializer):
    class Meta:
        model = LifecycleConfig
        fields = ("new_days", "loyal_orders", "loyal_spend_fen", "loyal_window_days",
                  "dormant_days", "lost_days", "last_pass_at", "updated_at")


class RfmConfigApi(TenantApiView):
    """The tenant's RFM settings: window, quintiles or thresholds, high scores."""

    required_scopes = READ_OR_MANAGE

    @extend_schema(responses=RfmConfigOutput, operation_id="rfm_config_retrieve")
    def get(self, request):
        return Response(RfmConfigOutput(rfm_config_get()).data)

    @extend_schema(request=RfmConfigInput, responses=RfmConfigOutput,
                   operation_id="rfm_config_update")
    def patch(self, request):
        data = RfmConfigInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        config = rfm_config_update(actor=self.actor, changes=dict(data.validated_data))
        return Response(RfmConfigOutput(config).data)


class LifecycleConfigApi(TenantApiView):
    """The thresholds of the lifecycle stages."""

    required_scopes = READ_OR_MANAGE

    @extend_schema(responses=LifecycleConfigOutput, operation_id="lifecycle_config_retrieve")
    def get(self, request):
        return Response(LifecycleConfigOutput(lifecycle_config_get()).data)

    @extend_schema(request=LifecycleConfigInput, responses=LifecycleConfigOutput,
                   operation_id="lifecycle_config_update")
    def patch(self, request):
        data = LifecycleConfigInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        config = lifecycle_config_update(actor=self.actor, changes=dict(data.validated_data))
        return Response(LifecycleConfigOutput(config).data)


# Runs

class RfmSegmentCount(serializers.Serializer):
    segment = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField()


class RfmRunOutput(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()

    class Meta:
        model = RfmRun
        fields = ("id", "status", "as_of", "window_start", "config", "counts", "members",
                  "scored", "changed", "duration_ms", "timings", "triggered_by", "job",
                  "started_at", "finished_at")

    @extend_schema_field(RfmSegmentCount(many=True))
    def get_counts(self, run: RfmRun) -> list[dict]:
        names = _names()
        return [{"segment": code, "name": names[code], "count": run.counts.get(code, 0)}
                for code in SEGMENT_CHOICES]


def _run(run_id) -> RfmRun:
    run = RfmRun.objects.filter(pk=run_id).first() if str(run_id).isdigit() else None
    if run is None:
        raise NotFound(_("未找到 RFM 计算 %(id)s。") % {"id": run_id})
    return run


class RfmRunStartInput(StrictSerializer):
    now = DateTimeField(required=False, help_text=_("按此时点计算（默认现在）"))


class RfmRunListCreateApi(TenantApiView):
    """Runs, newest first; POST starts one now (a job, 202)."""
    pagination_class = CursorPagination

    required_scopes = READ_OR_MANAGE

    @extend_schema(responses=RfmRunOutput(many=True), operation_id="rfm_runs_list")
    def get(self, request):
        return paginated_response(self, RfmRun.objects.all(), RfmRunOutput, ordering=("-id",))

    @extend_schema(request=RfmRunStartInput, responses={202: JobOutput},
                   operation_id="rfm_runs_start")
    @idempotent
    def post(self, request):
        data = RfmRunStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = rfm_run_start(actor=self.actor, now=data.validated_data.get("now"))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class RfmRunDetailApi(TenantApiView):
    """One run: its settings and cut points, counts per segment, timings."""

    required_scopes = {"GET": MEMBERS_READ}

    @extend_schema(responses=RfmRunOutput, operation_id="rfm_runs_retrieve")
    def get(self, request, run_id: int):
        return Response(RfmRunOutput(_run(run_id)).data)


# Movement

# "from" is a Python keyword: the class is built with type() so the field keeps its name.
RfmMovementQuery = type("RfmMovementQuery", (serializers.Serializer,), {
    "from": serializers.IntegerField(min_value=1, help_text=_("起始计算的 ID")),
    "to": serializers.IntegerField(min_value=1, help_text=_("目标计算的 ID")),
})


class RfmCellQuery(RfmMovementQuery):
    from_segment = serializers.ChoiceField(choices=SEGMENT_CHOICES)
    to_segment = serializers.ChoiceField(choices=SEGMENT_CHOICES)
    after = serializers.IntegerField(required=False, min_value=0)
    size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)


class RfmMovementOutput(serializers.Serializer):
    from_run = serializers.IntegerField(source="from_run.pk")
    to_run = serializers.IntegerField(source="to_run.pk")
    segments = serializers.ListField(child=serializers.CharField())
    names = serializers.DictField(child=serializers.CharField())
    matrix = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                   help_text=_("matrix[起始分群][目标分群] = 人数"))
    from_counts = serializers.DictField(child=serializers.IntegerField())
    to_counts = serializers.DictField(child=serializers.IntegerField())
    moved = serializers.IntegerField()


class RfmCellMember(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    member_no = serializers.IntegerField()
    name = serializers.CharField()


class RfmCellOutput(serializers.Serializer):
    count = serializers.IntegerField()
    members = RfmCellMember(many=True)
    next_after = serializers.IntegerField(allow_null=True)


def _runs(query) -> tuple[RfmRun, RfmRun]:
    return _run(query.validated_data["from"]), _run(query.validated_data["to"])


class RfmMovementApi(TenantApiView):
    """How many members moved from each segment (or none) to each between two runs."""

    required_scopes = {"GET": MEMBERS_READ}

    @extend_schema(parameters=[RfmMovementQuery], responses=RfmMovementOutput,
                   operation_id="rfm_movement")
    def get(self, request):
        query = RfmMovementQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        run_from, run_to = _runs(query)
        result = selectors.movement(run_from=run_from, run_to=run_to)
        return Response(RfmMovementOutput({**result, "names": _names()}).data)


class RfmMovementMembersApi(TenantApiView):
    """The members of one cell of the movement matrix, in member-number order."""

    required_scopes = {"GET": MEMBERS_READ}

    @extend_schema(parameters=[RfmCellQuery], responses=RfmCellOutput,
                   operation_id="rfm_movement_members")
    def get(self, request):
        query = RfmCellQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        run_from, run_to = _runs(query)
        numbers = visible_members(actor=self.actor, member_nos=selectors.movement_members(
            run_from=run_from, run_to=run_to, source=values["from_segment"],
            target=values["to_segment"]))
        members, next_after = segment_page(member_nos=numbers, after=values.get("after"),
                                           size=values["size"])
        return Response(RfmCellOutput({"count": len(numbers), "members": members,
                                    "next_after": next_after}).data)


# A member, and the funnel

class MemberRfmQuery(serializers.Serializer):
    runs = serializers.IntegerField(required=False, min_value=1, max_value=50,
                                    default=selectors.HISTORY_RUNS)


class RfmScoresOutput(serializers.Serializer):
    segment = serializers.CharField()
    segment_name = serializers.CharField()
    r = serializers.IntegerField()
    f = serializers.IntegerField()
    m = serializers.IntegerField()
    last_order_at = DateTimeField()
    frequency = serializers.IntegerField()
    monetary_fen = serializers.IntegerField()
    previous_segment = serializers.CharField(allow_null=True)
    segment_since = DateTimeField(allow_null=True)
    updated_at = DateTimeField()


class LifecycleStageOutput(serializers.Serializer):
    stage = serializers.CharField()
    stage_name = serializers.CharField()
    previous_stage = serializers.CharField(allow_null=True)
    changed_at = DateTimeField()


class RfmHistoryOutput(serializers.Serializer):
    run = serializers.IntegerField()
    as_of = DateTimeField()
    segment = serializers.CharField(allow_null=True)
    segment_name = serializers.CharField(allow_null=True)


class MemberRfmOutput(serializers.Serializer):
    member = serializers.IntegerField()
    rfm = RfmScoresOutput(allow_null=True, help_text=_("窗口内无订单时为 null"))
    lifecycle = LifecycleStageOutput(allow_null=True)
    history = RfmHistoryOutput(many=True, help_text=_("最近几次计算中的分群，新的在前"))


class MemberRfmApi(TenantApiView):
    """A member's scores, segment and lifecycle stage, and their segment in the latest
    runs."""

    required_scopes = {"GET": MEMBERS_READ}

    @extend_schema(parameters=[MemberRfmQuery], responses=MemberRfmOutput,
                   operation_id="member_rfm_retrieve")
    def get(self, request, member_id: int):
        query = MemberRfmQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        member = member_visible(actor=self.actor).filter(pk=member_id).first()
        if member is None:
            raise NotFound(_("未找到。"))
        return Response(MemberRfmOutput(selectors.member_rfm(
            member=member, runs=query.validated_data["runs"])).data)


class LifecycleFunnelStage(serializers.Serializer):
    stage = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField()
    share = serializers.FloatField()


class LifecycleFunnelOutput(serializers.Serializer):
    stages = LifecycleFunnelStage(many=True)
    evaluated = serializers.IntegerField()
    unevaluated = serializers.IntegerField(
        help_text=_("尚未计算阶段的会员（上次计算后加入、还未下单）"))


class LifecycleFunnelApi(TenantApiView):
    """Members per lifecycle stage."""

    required_scopes = {"GET": MEMBERS_READ}

    @extend_schema(responses=LifecycleFunnelOutput, operation_id="lifecycle_funnel")
    def get(self, request):
        return Response(LifecycleFunnelOutput(selectors.lifecycle_funnel()).data)
