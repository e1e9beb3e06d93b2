from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.coupons.models import Coupon, CouponTemplate
from members.models import OrderChannel
from scrm.api.serializers import DateTimeField, StrictSerializer

MAX_FEN = 10**12
MAX_STOCK = 100_000_000
MAX_LIST = 500
CODE_MAX = 32  # what a redeem accepts as typed: 12 symbols with dashes and spaces


def _codes(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                 max_length=MAX_LIST, help_text=help_text)


class CouponTemplateInput(StrictSerializer):
    """Creating needs ``code``, ``name`` and ``kind``; a PATCH any of the fields but ``code``."""

    code = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    kind = serializers.ChoiceField(choices=CouponTemplate.Kind.choices)
    amount_fen = serializers.IntegerField(required=False, min_value=0, max_value=MAX_FEN,
                                          help_text=gettext_lazy("满减券的减免金额(分)"))
    percent_off = serializers.IntegerField(required=False, min_value=0, max_value=99,
                                           help_text=gettext_lazy("折扣券：20 表示减 20%"))
    max_discount_fen = serializers.IntegerField(required=False, min_value=0, max_value=MAX_FEN,
                                                help_text=gettext_lazy("折扣券最高减免；0 不封顶"))
    gift_name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    threshold_fen = serializers.IntegerField(required=False, min_value=0, max_value=MAX_FEN)
    validity = serializers.ChoiceField(choices=CouponTemplate.Validity.choices, required=False)
    valid_from = DateTimeField(required=False, allow_null=True)
    valid_until = DateTimeField(required=False, allow_null=True)
    valid_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    total_stock = serializers.IntegerField(required=False, min_value=0, max_value=MAX_STOCK,
                                           help_text=gettext_lazy("发行总量；0 表示不限"))
    per_member_limit = serializers.IntegerField(required=False, min_value=0, max_value=10_000,
                                                help_text=gettext_lazy("0 表示不限"))
    stores = _codes(gettext_lazy("门店编码；空表示全部门店"))
    skus = _codes(gettext_lazy("适用 SKU；与品类都为空表示全部商品"))
    categories = _codes(gettext_lazy("适用品类"))
    allowed_tiers = _codes(gettext_lazy("等级编码；空表示不限"))
    is_active = serializers.BooleanField(required=False)


class CouponTemplateStatsOutput(serializers.Serializer):
    issued = serializers.IntegerField()
    redeemed = serializers.IntegerField()
    expired = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    unused = serializers.IntegerField()
    redemption_rate = serializers.FloatField()
    discount_fen = serializers.IntegerField()
    orders = serializers.IntegerField()
    gmv_fen = serializers.IntegerField()
    stock_left = serializers.IntegerField(allow_null=True)


class CouponTemplateOutput(serializers.ModelSerializer):
    stock_left = serializers.IntegerField(allow_null=True, read_only=True,
                                          help_text=gettext_lazy("剩余可发；null 表示不限"))

    class Meta:
        model = CouponTemplate
        fields = ("id", "code", "name", "description", "kind", "amount_fen", "percent_off",
                  "max_discount_fen", "gift_name", "threshold_fen", "validity", "valid_from",
                  "valid_until", "valid_days", "total_stock", "issued_count", "stock_left",
                  "per_member_limit", "stores", "skus", "categories", "allowed_tiers",
                  "is_active", "created_at", "updated_at")


class CouponTemplateDetailOutput(CouponTemplateOutput):
    stats = CouponTemplateStatsOutput(read_only=True)

    class Meta(CouponTemplateOutput.Meta):
        fields = (*CouponTemplateOutput.Meta.fields, "stats")


class CouponTemplateListParams(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CouponTemplate.Kind.choices, required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)


@extend_schema_field(OpenApiTypes.STR)
class CouponTemplateRefField(serializers.Field):
    """A template's id (a number) or code (a string)."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data > 0:
            return data
        if isinstance(data, str) and 0 < len(data) <= 64 and "\x00" not in data:
            return data
        raise serializers.ValidationError(_("须为模板 ID（数字）或编码（字符串）。"))

    def to_representation(self, value):
        return value


class CouponIssueInput(StrictSerializer):
    template = CouponTemplateRefField(help_text=gettext_lazy("模板 ID 或编码"))
    member = serializers.IntegerField(min_value=1)


class CouponOutput(serializers.ModelSerializer):
    template_code = serializers.CharField(source="template.code", read_only=True)
    template_name = serializers.CharField(source="template.name", read_only=True)
    kind = serializers.CharField(source="template.kind", read_only=True)
    gift_name = serializers.CharField(source="template.gift_name", read_only=True)

    class Meta:
        model = Coupon
        fields = ("id", "code", "template", "template_code", "template_name", "kind",
                  "gift_name", "member", "status", "source", "ref", "issued_at", "valid_from",
                  "valid_until", "redeemed_at", "redeemed_order", "order_amount_fen",
                  "discount_fen", "redeemed_store", "cancelled_at", "cancel_reason")


class CouponListParams(serializers.Serializer):
    member = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)
    template = serializers.CharField(max_length=64, required=False,
                                     help_text=gettext_lazy("模板 ID 或编码"))


class MemberCouponListParams(serializers.Serializer):
    status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)


class CouponOrderRefInput(StrictSerializer):
    order_no = serializers.CharField(max_length=64)
    channel = serializers.ChoiceField(choices=OrderChannel.choices)


@extend_schema_field({"oneOf": [
    {"type": "integer"},
    {"type": "object", "required": ["order_no", "channel"],
     "properties": {"order_no": {"type": "string"},
                    "channel": {"type": "string", "enum": OrderChannel.values}}},
]})
class CouponOrderRefField(serializers.Field):
    """An order's id, or its ``{"order_no", "channel"}``."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data > 0:
            return data
        if isinstance(data, dict):
            ref = CouponOrderRefInput(data=data)
            ref.is_valid(raise_exception=True)
            return dict(ref.validated_data)
        raise serializers.ValidationError(_("须为订单 ID，或 {\"order_no\", \"channel\"}。"))

    def to_representation(self, value):
        return value


class CouponRedeemInput(StrictSerializer):
    code = serializers.CharField(max_length=CODE_MAX)
    order = CouponOrderRefField(required=False, help_text=gettext_lazy("订单 ID，或订单号与渠道"))
    order_amount_fen = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_FEN,
        help_text=gettext_lazy("下单前核销：订单金额(分)"))
    store = serializers.CharField(required=False, max_length=64,
                                  help_text=gettext_lazy("下单前核销：门店编码"))
    skus = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                 max_length=MAX_LIST,
                                 help_text=gettext_lazy("下单前核销：商品 SKU"))

    def validate(self, attrs):
        checkout = {"order_amount_fen", "store", "skus"} & set(attrs)
        if "order" in attrs and checkout:
            raise serializers.ValidationError(
                {sorted(checkout)[0]: [_("提供订单时不再提供订单金额、门店或商品。")]})
        if "order" not in attrs and "order_amount_fen" not in attrs:
            raise serializers.ValidationError(
                {"order": [_("须提供订单，或下单前核销的订单金额。")]})
        return attrs


class CouponCancelInput(StrictSerializer):
    reason = serializers.CharField(max_length=255)
