import json

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import Gender, IdentityKind, Member, OrderChannel, SourceChannel
from scrm.api.serializers import DateTimeField, StrictSerializer, shared

MAX_FEN = 10_000_000_000  # 1 亿元: anything above is a unit mistake, not an order
MAX_FIRST_TOUCH_CHARS = 4096


def validate_storable_json(value) -> None:
    """PostgreSQL's jsonb refuses U+0000 and lone surrogates: a 400 here, not a 500 there."""
    text = json.dumps(value, ensure_ascii=False)  # U+0000 comes out escaped, as \u0000
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise serializers.ValidationError(_("包含无法保存的字符。")) from exc
    if "\\u0000" in text:
        raise serializers.ValidationError(_("包含无法保存的字符。"))
    if len(text) > MAX_FIRST_TOUCH_CHARS:
        raise serializers.ValidationError(
            _("内容过长（最多 %(max)s 个字符）。") % {"max": MAX_FIRST_TOUCH_CHARS}
        )


class IdentityInput(StrictSerializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    app_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    value = serializers.CharField(max_length=128)


class IdentityOutput(serializers.Serializer):
    kind = serializers.CharField()
    app_id = serializers.CharField()
    value = serializers.CharField(source="display")


class ProfileInput(StrictSerializer):
    name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    birthday = serializers.DateField(required=False, allow_null=True)
    province = serializers.CharField(max_length=32, required=False, allow_blank=True)
    city = serializers.CharField(max_length=32, required=False, allow_blank=True)
    source_channel = serializers.ChoiceField(choices=SourceChannel.choices, required=False)
    first_touch = serializers.DictField(required=False, validators=[validate_storable_json])
    store = serializers.CharField(
        max_length=64, required=False, allow_null=True, help_text=_("门店编码")
    )
    guide = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("导购（员工 ID）")
    )
    marketing_consent = serializers.BooleanField(required=False)


class MemberUpsertInput(ProfileInput):
    identities = IdentityInput(many=True, allow_empty=False, max_length=20)


class StatsOutput(serializers.Serializer):
    order_count = serializers.IntegerField()
    total_spent_fen = serializers.IntegerField()
    refunded_fen = serializers.IntegerField()
    first_order_at = DateTimeField(allow_null=True)
    last_order_at = DateTimeField(allow_null=True)


EMPTY_STATS = {
    "order_count": 0,
    "total_spent_fen": 0,
    "refunded_fen": 0,
    "first_order_at": None,
    "last_order_at": None,
}


class MemberOutput(serializers.ModelSerializer):
    """A member loaded with ``selectors.member_relations()``."""

    phone = serializers.CharField(source="phone_masked")
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    identities = IdentityOutput(many=True, read_only=True, source="identity_list")
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = [
            "id",
            "member_no",
            "name",
            "gender",
            "birthday",
            "province",
            "city",
            "phone",
            "source_channel",
            "first_touch",
            "store",
            "guide",
            "marketing_consent",
            "consent_updated_at",
            "status",
            "merged_into",
            "identities",
            "stats",
            "created_at",
            "updated_at",
        ]

    def get_stats(self, member) -> StatsOutput:
        rows = member.stats_list
        return shared(StatsOutput).to_representation(rows[0]) if rows else EMPTY_STATS


class TimelineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    occurred_at = DateTimeField()
    data = serializers.JSONField()
    actor = serializers.CharField()


class OrderLineInput(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    product = serializers.CharField(max_length=128)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    price_fen = serializers.IntegerField(min_value=0, max_value=MAX_FEN)


class BuyerInput(StrictSerializer):
    identities = IdentityInput(many=True, allow_empty=False, max_length=20)
    name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    province = serializers.CharField(max_length=32, required=False, allow_blank=True)
    city = serializers.CharField(max_length=32, required=False, allow_blank=True)


class OrderInput(StrictSerializer):
    order_no = serializers.CharField(max_length=64)
    channel = serializers.ChoiceField(choices=OrderChannel.choices)
    store = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    paid_at = DateTimeField()
    amount_fen = serializers.IntegerField(min_value=0, max_value=MAX_FEN)
    buyer = BuyerInput()
    lines = OrderLineInput(many=True, allow_empty=False, max_length=500)


class OrderLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    product = serializers.CharField()
    category = serializers.CharField()
    quantity = serializers.IntegerField()
    price_fen = serializers.IntegerField()


class OrderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_no = serializers.CharField()
    channel = serializers.CharField()
    store = serializers.CharField(source="store.code", allow_null=True, help_text=_("门店编码"))
    member = serializers.IntegerField(source="member_id")
    paid_at = DateTimeField()
    amount_fen = serializers.IntegerField()
    refunded_fen = serializers.IntegerField()
    status = serializers.CharField()
    lines = OrderLineOutput(many=True, read_only=True)
    created_at = DateTimeField()


class RefundInput(StrictSerializer):
    refund_no = serializers.CharField(max_length=64)
    amount_fen = serializers.IntegerField(min_value=1, max_value=MAX_FEN)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class RefundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField(source="order_id")
    refund_no = serializers.CharField()
    amount_fen = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = DateTimeField()
