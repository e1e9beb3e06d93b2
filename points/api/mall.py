"""The points mall API (积分商城): the catalogue and its flash sales (积分秒杀), redemptions,
their fulfilment and cancellation."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from points.api.serializers import MAX_POINTS
from points.api.views import PointsApiBase, ledger_key
from points.models import FlashSale, MallItem, MallRedemption
from points.services import mall as services
from scrm.access import PII_READ, POINTS_MANAGE, POINTS_READ, POINTS_WRITE, Actor
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.serializers import DateTimeField, StrictSerializer

CATALOGUE_SCOPES = {"GET": POINTS_READ, "*": POINTS_MANAGE}
REDEMPTION_SCOPES = {"GET": POINTS_READ, "*": POINTS_WRITE}
MAX_STOCK = 10_000_000
MAX_CASH_FEN = 100_000_000
MAX_LIMIT = 10_000
ADDRESS_FIELDS = 20


# Catalogue serializers


class FlashSaleBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    starts_at = DateTimeField()
    ends_at = DateTimeField()
    points = serializers.IntegerField()
    cash_fen = serializers.IntegerField()
    stock = serializers.IntegerField()
    sold = serializers.IntegerField()
    per_member_limit = serializers.IntegerField()


class FlashSaleOutput(FlashSaleBriefOutput):
    item = serializers.IntegerField(source="item_id")
    item_name = serializers.CharField(source="item.name")
    is_active = serializers.BooleanField()
    created_at = DateTimeField()


class MallItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    image_url = serializers.CharField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    cash_fen = serializers.IntegerField()
    stock = serializers.IntegerField()
    sold = serializers.IntegerField()
    per_member_limit = serializers.IntegerField()
    allowed_tiers = serializers.ListField(child=serializers.CharField())
    coupon_template = serializers.CharField()
    starts_at = DateTimeField(allow_null=True)
    ends_at = DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    sort_order = serializers.IntegerField()
    flash_sale = serializers.SerializerMethodField(
        help_text=gettext_lazy("正在进行的秒杀，没有则为 null"))
    created_at = DateTimeField()
    updated_at = DateTimeField()

    @extend_schema_field(FlashSaleBriefOutput(allow_null=True))
    def get_flash_sale(self, item: MallItem) -> dict | None:
        running = getattr(item, "current_flash_sales", None)
        return FlashSaleBriefOutput(running[0]).data if running else None


class MallItemInput(StrictSerializer):
    """Creating needs ``name`` and ``points``; a PATCH any of the fields."""

    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    image_url = serializers.URLField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=MallItem.Kind.choices, required=False)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS)
    cash_fen = serializers.IntegerField(min_value=0, max_value=MAX_CASH_FEN, required=False)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False,
                                     help_text=gettext_lazy("剩余可兑换数量"))
    per_member_limit = serializers.IntegerField(min_value=0, max_value=MAX_LIMIT,
                                                required=False,
                                                help_text=gettext_lazy("0 表示不限"))
    allowed_tiers = serializers.ListField(child=serializers.SlugField(max_length=32),
                                          max_length=50, required=False,
                                          help_text=gettext_lazy("等级编码；空表示不限"))
    coupon_template = serializers.CharField(max_length=64, required=False, allow_blank=True)
    starts_at = DateTimeField(required=False, allow_null=True)
    ends_at = DateTimeField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)
    sort_order = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000,
                                          required=False)


class MallItemListParams(serializers.Serializer):
    all = serializers.BooleanField(required=False, default=False)
    kind = serializers.ChoiceField(choices=MallItem.Kind.choices, required=False, default="")


class FlashSaleUpdateInput(StrictSerializer):
    name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    starts_at = DateTimeField()
    ends_at = DateTimeField()
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS)
    cash_fen = serializers.IntegerField(min_value=0, max_value=MAX_CASH_FEN, required=False)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)
    per_member_limit = serializers.IntegerField(min_value=0, max_value=MAX_LIMIT,
                                                required=False,
                                                help_text=gettext_lazy("0 表示不限"))
    is_active = serializers.BooleanField(required=False)


class FlashSaleCreateInput(FlashSaleUpdateInput):
    item = serializers.IntegerField(min_value=1)


class FlashSaleListParams(serializers.Serializer):
    item = serializers.IntegerField(min_value=1, required=False)
    state = serializers.ChoiceField(choices=["upcoming", "running", "ended"], required=False,
                                    default="")


# Redemption serializers


def validate_address(value: dict) -> dict:
    if len(value) > ADDRESS_FIELDS:
        raise serializers.ValidationError(
            _("收货信息最多 %(n)s 项。") % {"n": ADDRESS_FIELDS})
    return value


class MallRedeemInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    item = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_QUANTITY,
                                        default=1)
    flash_sale = serializers.IntegerField(min_value=1, required=False, allow_null=True,
                                          default=None)
    address = serializers.DictField(
        child=serializers.CharField(max_length=255, allow_blank=True), required=False,
        default=dict, validators=[validate_address],
        help_text=gettext_lazy("收货信息，如 name、phone、province、city、detail"))
    payment_ref = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                        default="",
                                        help_text=gettext_lazy("积分+现金商品的支付单号"))


class MallRedemptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member = serializers.IntegerField(source="member_id")
    item = serializers.IntegerField(source="item_id")
    item_name = serializers.CharField(source="item.name")
    item_kind = serializers.CharField(source="item.kind")
    flash_sale = serializers.IntegerField(source="flash_sale_id", allow_null=True)
    quantity = serializers.IntegerField()
    points = serializers.IntegerField()
    cash_fen = serializers.IntegerField()
    payment_ref = serializers.CharField()
    status = serializers.CharField()
    address = serializers.SerializerMethodField(
        help_text=gettext_lazy("收货信息：仅对可查看个人信息或管理积分的角色显示，否则为 null"))
    tracking_no = serializers.CharField()
    operator = serializers.CharField()
    points_entry = serializers.IntegerField(source="points_entry_id", allow_null=True)
    created_at = DateTimeField()
    fulfilled_at = DateTimeField()
    cancelled_at = DateTimeField()
    cancel_reason = serializers.CharField()

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_address(self, redemption: MallRedemption) -> dict | None:
        return redemption.address if self.context.get("show_address") else None


class MallRedeemOutput(MallRedemptionOutput):
    """What a redemption answers with (its schema; the view adds the balance)."""

    balance = serializers.IntegerField(help_text=gettext_lazy("会员当前积分余额"))


class MallRedemptionListParams(serializers.Serializer):
    member = serializers.IntegerField(min_value=1, required=False)
    item = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=MallRedemption.Status.choices, required=False)


class MallRedemptionFulfilInput(StrictSerializer):
    tracking_no = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                        default="")


class MallRedemptionCancelInput(StrictSerializer):
    reason = serializers.CharField(max_length=255)


# Views


def _params(serializer_class: type[serializers.Serializer], request) -> dict:
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _item(item_id: int) -> MallItem:
    item = services.mall_item_list(on_sale_only=False).filter(pk=item_id).first()
    if item is None:
        raise NotFound(_("未找到。"))
    return item


def _flash_sale(sale_id: int) -> FlashSale:
    sale = services.flash_sale_list().filter(pk=sale_id).first()
    if sale is None:
        raise NotFound(_("未找到。"))
    return sale


def _shows_address(actor: Actor) -> bool:
    # Recipient names and phones are personal data: for those who may see it, or who ship.
    return actor.can(PII_READ) or actor.can(POINTS_MANAGE)


class MallItemListCreateApi(PointsApiBase):
    pagination_class = CursorPagination
    required_scopes = CATALOGUE_SCOPES

    @extend_schema(parameters=[OpenApiParameter("all", bool, description="也列出未上架的商品"
                                                "（需管理积分权限）"),
                               OpenApiParameter("kind", str)],
                   responses=MallItemOutput(many=True), operation_id="mall_items_list")
    def get(self, request):
        params = _params(MallItemListParams, request)
        if params["all"] and not self.actor.can(POINTS_MANAGE):
            raise PermissionDenied()
        items = services.mall_item_list(on_sale_only=not params["all"], kind=params["kind"])
        paginator = CursorPagination()
        paginator.ordering = ("sort_order", "id")
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(MallItemOutput(page, many=True).data)

    @extend_schema(request=MallItemInput, responses={201: MallItemOutput},
                   operation_id="mall_items_create")
    @idempotent
    def post(self, request):
        data = MallItemInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.mall_item_create(actor=self.actor, **data.validated_data)
        return Response(MallItemOutput(_item(item.pk)).data, status=status.HTTP_201_CREATED)


class MallItemDetailApi(PointsApiBase):
    required_scopes = CATALOGUE_SCOPES

    @extend_schema(responses=MallItemOutput, operation_id="mall_items_retrieve")
    def get(self, request, item_id: int):
        return Response(MallItemOutput(_item(item_id)).data)

    @extend_schema(request=MallItemInput, responses=MallItemOutput,
                   operation_id="mall_items_update")
    def patch(self, request, item_id: int):
        item = _item(item_id)
        data = MallItemInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.mall_item_update(actor=self.actor, item=item, **data.validated_data)
        return Response(MallItemOutput(_item(item_id)).data)


class FlashSaleListCreateApi(PointsApiBase):
    pagination_class = CursorPagination
    required_scopes = CATALOGUE_SCOPES

    @extend_schema(parameters=[OpenApiParameter("item", int),
                               OpenApiParameter("state", str,
                                                enum=["upcoming", "running", "ended"])],
                   responses=FlashSaleOutput(many=True), operation_id="mall_flash_sales_list")
    def get(self, request):
        params = _params(FlashSaleListParams, request)
        sales = services.flash_sale_list(item_id=params.get("item"), state=params["state"])
        paginator = CursorPagination()
        paginator.ordering = ("-starts_at", "-id")
        page = paginator.paginate_queryset(sales, request, view=self)
        return paginator.get_paginated_response(FlashSaleOutput(page, many=True).data)

    @extend_schema(request=FlashSaleCreateInput, responses={201: FlashSaleOutput},
                   operation_id="mall_flash_sales_create")
    @idempotent
    def post(self, request):
        data = FlashSaleCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        item = _item(values.pop("item"))
        sale = services.flash_sale_create(actor=self.actor, item=item, **values)
        return Response(FlashSaleOutput(_flash_sale(sale.pk)).data,
                        status=status.HTTP_201_CREATED)


class FlashSaleDetailApi(PointsApiBase):
    required_scopes = CATALOGUE_SCOPES

    @extend_schema(responses=FlashSaleOutput, operation_id="mall_flash_sales_retrieve")
    def get(self, request, sale_id: int):
        return Response(FlashSaleOutput(_flash_sale(sale_id)).data)

    @extend_schema(request=FlashSaleUpdateInput, responses=FlashSaleOutput,
                   operation_id="mall_flash_sales_update")
    def patch(self, request, sale_id: int):
        sale = _flash_sale(sale_id)
        data = FlashSaleUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.flash_sale_update(actor=self.actor, flash_sale=sale, **data.validated_data)
        return Response(FlashSaleOutput(_flash_sale(sale_id)).data)


class MallRedemptionApiBase(PointsApiBase):
    def get_redemption(self, redemption_id: int) -> MallRedemption:
        redemption = services.mall_redemption_list(actor=self.actor).filter(
            pk=redemption_id).first()
        if redemption is None:
            raise NotFound(_("未找到。"))
        return redemption

    def redemption_response(self, redemption: MallRedemption) -> Response:
        context = {"show_address": _shows_address(self.actor)}
        return Response(MallRedemptionOutput(redemption, context=context).data)


class MallRedemptionListCreateApi(MallRedemptionApiBase):
    pagination_class = CursorPagination
    required_scopes = REDEMPTION_SCOPES

    @extend_schema(parameters=[OpenApiParameter("member", int), OpenApiParameter("item", int),
                               OpenApiParameter("status", str,
                                                enum=MallRedemption.Status.values)],
                   responses=MallRedemptionOutput(many=True),
                   operation_id="mall_redemptions_list")
    def get(self, request):
        redemptions = services.mall_redemption_list(
            actor=self.actor, filters=_params(MallRedemptionListParams, request))
        paginator = CursorPagination()
        page = paginator.paginate_queryset(redemptions, request, view=self)
        context = {"show_address": _shows_address(self.actor)}
        return paginator.get_paginated_response(
            MallRedemptionOutput(page, many=True, context=context).data)

    @extend_schema(request=MallRedeemInput,
                   responses={201: MallRedeemOutput, 200: MallRedeemOutput},
                   operation_id="mall_redeem")
    @idempotent
    def post(self, request):
        data = MallRedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        member = self.get_member(values["member"])
        item = MallItem.objects.filter(pk=values["item"]).first()
        if item is None:
            raise NotFound(_("未找到。"))
        sale = _flash_sale(values["flash_sale"]) if values["flash_sale"] is not None else None
        result = services.mall_redeem(
            actor=self.actor, member=member, item=item, quantity=values["quantity"],
            flash_sale=sale, address=values["address"], payment_ref=values["payment_ref"],
            idempotency_key=ledger_key(request))  # fmt: skip
        context = {"show_address": _shows_address(self.actor)}
        body = {**MallRedemptionOutput(result.redemption, context=context).data,
                "balance": result.balance}
        return Response(body, status=status.HTTP_200_OK if result.replayed
                        else status.HTTP_201_CREATED)


class MallRedemptionDetailApi(MallRedemptionApiBase):
    required_scopes = REDEMPTION_SCOPES

    @extend_schema(responses=MallRedemptionOutput, operation_id="mall_redemptions_retrieve")
    def get(self, request, redemption_id: int):
        return self.redemption_response(self.get_redemption(redemption_id))


class MallRedemptionFulfilApi(MallRedemptionApiBase):
    """The gift was shipped, or the coupon issued."""

    required_scopes = {"POST": POINTS_MANAGE}

    @extend_schema(request=MallRedemptionFulfilInput, responses=MallRedemptionOutput,
                   operation_id="mall_redemptions_fulfil")
    @idempotent
    def post(self, request, redemption_id: int):
        redemption = self.get_redemption(redemption_id)
        data = MallRedemptionFulfilInput(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = services.mall_redemption_fulfil(
            actor=self.actor, redemption=redemption,
            tracking_no=data.validated_data["tracking_no"])
        return self.redemption_response(self.get_redemption(redemption.pk))


class MallRedemptionCancelApi(MallRedemptionApiBase):
    """Cancel a redemption not fulfilled yet: its points and stock go back."""

    required_scopes = {"POST": POINTS_WRITE}

    @extend_schema(request=MallRedemptionCancelInput, responses=MallRedemptionOutput,
                   operation_id="mall_redemptions_cancel")
    @idempotent
    def post(self, request, redemption_id: int):
        redemption = self.get_redemption(redemption_id)
        data = MallRedemptionCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = services.mall_redemption_cancel(
            actor=self.actor, redemption=redemption, reason=data.validated_data["reason"])
        return self.redemption_response(self.get_redemption(redemption.pk))
