from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from members import selectors, services
from members.api import serializers as io
from scrm.access import ORDERS_READ, ORDERS_WRITE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.views import TenantApiView

ORDER_SCOPES = {"GET": ORDERS_READ, "*": ORDERS_WRITE}
BULK_LIMIT = 1000


def order_queryset(actor):
    return selectors.order_visible(actor=actor).select_related("store").prefetch_related("lines")


class OrderListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = ORDER_SCOPES

    @extend_schema(responses=io.OrderOutput(many=True), operation_id="orders_list")
    def get(self, request):
        paginator = CursorPagination()
        page = paginator.paginate_queryset(order_queryset(self.actor), request, view=self)
        return paginator.get_paginated_response(io.OrderOutput(page, many=True).data)

    @extend_schema(
        request=io.OrderInput,
        responses={201: io.OrderOutput, 200: io.OrderOutput},
        operation_id="orders_create",
    )
    @idempotent
    def post(self, request):
        data = io.OrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        order, created = services.order_ingest(actor=self.actor, data=data.validated_data)
        order = order_queryset(self.actor).filter(pk=order.pk).first()
        if order is None:  # the order exists, for a member this actor may not see
            raise NotFound(_("未找到。"))
        body = io.OrderOutput(order).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class OrderDetailApi(TenantApiView):
    required_scopes = ORDER_SCOPES

    @extend_schema(responses=io.OrderOutput, operation_id="orders_retrieve")
    def get(self, request, order_id: int):
        order = order_queryset(self.actor).filter(pk=order_id).first()
        if order is None:
            raise NotFound(_("未找到。"))
        return Response(io.OrderOutput(order).data)


class OrderRefundApi(TenantApiView):
    required_scopes = ORDER_SCOPES

    @extend_schema(
        request=io.RefundInput,
        responses={201: io.RefundOutput, 200: io.RefundOutput},
        operation_id="orders_refund",
    )
    @idempotent
    def post(self, request, order_id: int):
        order = selectors.order_visible(actor=self.actor).filter(pk=order_id).first()
        if order is None:
            raise NotFound(_("未找到。"))
        data = io.RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        refund, created = services.refund_create(
            actor=self.actor, order=order, **data.validated_data
        )
        return Response(
            io.RefundOutput(refund).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


BulkResult = inline_serializer(
    "OrderBulkResult",
    {
        "results": inline_serializer(
            "OrderBulkItem",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=["created", "existing", "error"]),
                "id": serializers.IntegerField(required=False),
                "member": serializers.IntegerField(required=False),
                "code": serializers.CharField(required=False),
                "message": serializers.CharField(required=False),
                "errors": serializers.DictField(required=False),
            },
            many=True,
        ),
        "created": serializers.IntegerField(),
        "existing": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
    },
)


class OrderBulkApi(TenantApiView):
    throttle_scope = "bulk"
    required_scopes = ORDER_SCOPES

    class OrderBulkInput(serializers.Serializer):
        orders = serializers.ListField(
            child=serializers.DictField(), allow_empty=False, max_length=BULK_LIMIT
        )

    @extend_schema(request=OrderBulkInput, responses=BulkResult, operation_id="orders_bulk")
    @idempotent
    def post(self, request):
        data = self.OrderBulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        valid, results = [], []
        # One serializer for every order: building one (a deep copy of all its nested fields)
        # costs four times what validating an order does.
        order_input = io.OrderInput()
        for index, raw in enumerate(data.validated_data["orders"]):
            try:
                valid.append((index, order_input.run_validation(raw)))
            except ValidationError as exc:
                results.append(
                    {
                        "index": index,
                        "status": "error",
                        "code": "validation_error",
                        "message": _("订单数据有误。"),
                        "errors": exc.detail,
                    }
                )
        results += services.order_ingest_bulk(actor=self.actor, orders=valid)
        results.sort(key=lambda result: result["index"])
        counts = {
            key: sum(1 for r in results if r["status"] == key)
            for key in ("created", "existing", "error")
        }
        return Response(
            {
                "results": results,
                "created": counts["created"],
                "existing": counts["existing"],
                "failed": counts["error"],
            }
        )
