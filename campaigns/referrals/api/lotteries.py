"""Lotteries (抽奖) API: lotteries and their prizes, draws (a member's campaign draw or a
product code's entry) and product codes."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from campaigns.referrals import services
from campaigns.referrals.api import serializers as io
from campaigns.referrals.api.referrals import member_for, missing, params_of
from campaigns.referrals.models import Lottery, LotteryDraw
from scrm.access import CAMPAIGNS_MANAGE, CAMPAIGNS_READ, MEMBERS_WRITE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.views import TenantApiView


def _lottery(lottery_id: int) -> Lottery:
    lottery = Lottery.objects.prefetch_related("prizes").filter(pk=lottery_id).first()
    if lottery is None:
        raise missing()
    return lottery


def _changes(values: dict) -> tuple[dict, list | None]:
    values = dict(values)
    prizes = values.pop("prizes", None)
    return values, [dict(prize) for prize in prizes] if prizes is not None else None


def draw_key(request) -> str | None:
    """The request's Idempotency-Key, namespaced so it never meets other keys."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return f"api:{key}" if key else None


class LotteryListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": CAMPAIGNS_READ, "POST": CAMPAIGNS_MANAGE}

    @extend_schema(responses=io.LotteryOutput(many=True), operation_id="lotteries_list")
    def get(self, request):
        paginator = CursorPagination()
        paginator.ordering = ("-id",)
        page = paginator.paginate_queryset(Lottery.objects.prefetch_related("prizes"), request,
                                           view=self)
        return paginator.get_paginated_response(io.LotteryOutput(page, many=True).data)

    @extend_schema(request=io.LotteryInput, responses={201: io.LotteryOutput},
                   operation_id="lotteries_create")
    @idempotent
    def post(self, request):
        data = io.LotteryInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes, prizes = _changes(data.validated_data)
        lottery = services.lottery_save(actor=self.actor, changes=changes, prizes=prizes)
        return Response(io.LotteryOutput(_lottery(lottery.pk)).data,
                        status=status.HTTP_201_CREATED)


class LotteryDetailApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "PATCH": CAMPAIGNS_MANAGE}

    @extend_schema(responses=io.LotteryOutput, operation_id="lotteries_retrieve")
    def get(self, request, lottery_id: int):
        return Response(io.LotteryOutput(_lottery(lottery_id)).data)

    @extend_schema(request=io.LotteryInput(partial=True), responses=io.LotteryOutput,
                   operation_id="lotteries_update")
    def patch(self, request, lottery_id: int):
        lottery = _lottery(lottery_id)
        data = io.LotteryInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes, prizes = _changes(data.validated_data)
        services.lottery_save(actor=self.actor, lottery=lottery, changes=changes, prizes=prizes)
        return Response(io.LotteryOutput(_lottery(lottery_id)).data)


class LotteryDrawApi(TenantApiView):
    """POST: a draw for a member (``product_code`` for a product code's entry); the same
    Idempotency-Key again replays the first answer.  GET: the lottery's draws."""
    pagination_class = CursorPagination

    required_scopes = {"GET": CAMPAIGNS_READ, "POST": MEMBERS_WRITE}

    @extend_schema(parameters=[io.DrawListParams], responses=io.DrawOutput(many=True),
                   operation_id="lottery_draws_list")
    def get(self, request, lottery_id: int):
        params = params_of(io.DrawListParams, request)
        draws = LotteryDraw.objects.filter(lottery=_lottery(lottery_id)).select_related("prize")
        if params.get("member"):
            draws = draws.filter(member_id=params["member"])
        if params.get("outcome"):
            draws = draws.filter(outcome=params["outcome"])
        paginator = CursorPagination()
        paginator.ordering = ("-id",)
        page = paginator.paginate_queryset(draws, request, view=self)
        return paginator.get_paginated_response(io.DrawOutput(page, many=True).data)

    @extend_schema(request=io.DrawInput, responses={201: io.DrawOutput, 200: io.DrawOutput},
                   operation_id="lottery_draws_create")
    @idempotent
    def post(self, request, lottery_id: int):
        lottery = _lottery(lottery_id)
        data = io.DrawInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_for(self.actor, data.validated_data["member"])
        result = services.lottery_draw(actor=self.actor, lottery=lottery, member=member,
                                       product_code=data.validated_data["product_code"],
                                       idempotency_key=draw_key(request))
        return Response(io.DrawOutput(result.draw).data,
                        status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class LotteryCodesApi(TenantApiView):
    """Add product codes (一物一码) to the lottery, or have ``count`` generated."""

    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=io.CodesInput, responses={201: io.CodesOutput},
                   operation_id="lottery_codes_add")
    @idempotent
    def post(self, request, lottery_id: int):
        lottery = _lottery(lottery_id)
        data = io.CodesInput(data=request.data)
        data.is_valid(raise_exception=True)
        if "count" in data.validated_data:
            codes = services.lottery_codes_generate(actor=self.actor, lottery=lottery,
                                                    count=data.validated_data["count"])
            body = {"added": len(codes), "codes": codes}
        else:
            added = services.lottery_codes_add(actor=self.actor, lottery=lottery,
                                               codes=data.validated_data["codes"])
            body = {"added": added, "codes": []}
        return Response(io.CodesOutput(body).data, status=status.HTTP_201_CREATED)
