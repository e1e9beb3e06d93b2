"""Input and output of the referrals and lotteries API."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.referrals.models import (
    Lottery,
    LotteryDraw,
    LotteryPrize,
    ReferralAttribution,
    ReferralCampaign,
    ReferralEvent,
    ReferralInvite,
    ReferralReward,
    RewardKind,
)
from campaigns.referrals.services.invites import invite_link
from scrm.api.serializers import DateTimeField, StrictSerializer


def _named_choices(choices: type, component: str) -> type:
    """A choice field whose enum is a schema component of its own name: the field names
    ("kind", "action") are taken by other choice sets in the schema."""

    @extend_schema_field({"type": "string", "enum": list(choices.values)},
                         component_name=component)
    class NamedChoiceField(serializers.ChoiceField):
        def __init__(self, **kwargs) -> None:
            super().__init__(choices=choices.choices, **kwargs)

    return NamedChoiceField


RewardKindField = _named_choices(RewardKind, "ReferralRewardKindEnum")
PrizeKindField = _named_choices(LotteryPrize.Kind, "LotteryPrizeKindEnum")


class MemberBrief(serializers.Serializer):
    id = serializers.IntegerField()
    member_no = serializers.IntegerField()
    name = serializers.CharField()


# Referral campaigns


class RewardInput(StrictSerializer):
    event = serializers.ChoiceField(choices=ReferralReward.Event.choices)
    beneficiary = serializers.ChoiceField(choices=ReferralReward.Beneficiary.choices)
    threshold = serializers.IntegerField(required=False, min_value=0, max_value=100_000,
                                         default=0)
    kind = RewardKindField()
    params = serializers.DictField(default=dict)


class ReferralInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    is_active = serializers.BooleanField(required=False)
    starts_at = DateTimeField(required=False)
    ends_at = DateTimeField(required=False, allow_null=True)
    oa_appid = serializers.CharField(required=False, allow_blank=True, max_length=64)
    qr_permanent = serializers.BooleanField(required=False)
    landing_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    success_event = serializers.ChoiceField(choices=ReferralEvent.choices, required=False)
    conversion_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    inviter_cap = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    velocity_per_hour = serializers.IntegerField(required=False, min_value=0,
                                                 max_value=1_000_000)
    rewards = RewardInput(many=True, required=False)


class RewardOutput(serializers.ModelSerializer):
    kind = RewardKindField(read_only=True)

    class Meta:
        model = ReferralReward
        fields = ("id", "event", "beneficiary", "threshold", "kind", "params")


class ReferralStatsOutput(serializers.Serializer):
    invites = serializers.IntegerField()
    clicks = serializers.IntegerField()
    attributions = serializers.DictField(child=serializers.IntegerField())
    successes = serializers.IntegerField()
    registered = serializers.IntegerField()
    buyers = serializers.IntegerField()
    gmv_fen = serializers.IntegerField()


class ReferralOutput(serializers.ModelSerializer):
    rewards = RewardOutput(many=True, read_only=True)

    class Meta:
        model = ReferralCampaign
        fields = ("id", "name", "description", "is_active", "starts_at", "ends_at", "oa_appid",
                  "qr_permanent", "landing_url", "success_event", "conversion_days",
                  "inviter_cap", "velocity_per_hour", "rewards", "created_by", "created_at",
                  "updated_at")


class ReferralDetailOutput(ReferralOutput):
    stats = ReferralStatsOutput(read_only=True)

    class Meta(ReferralOutput.Meta):
        fields = (*ReferralOutput.Meta.fields, "stats")


class InviteInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    qr = serializers.BooleanField(default=False, help_text=_("同时生成（或续期）公众号邀请二维码"))


class InviteQrOutput(serializers.Serializer):
    ticket = serializers.CharField()
    url = serializers.CharField()
    image_url = serializers.CharField()
    expires_at = DateTimeField(allow_null=True)
    is_permanent = serializers.BooleanField()


class InviteOutput(serializers.ModelSerializer):
    inviter = serializers.IntegerField(source="inviter_id")
    link = serializers.SerializerMethodField()
    qr = serializers.SerializerMethodField()

    class Meta:
        model = ReferralInvite
        fields = ("id", "campaign", "inviter", "code", "link", "clicks", "qr", "created_at")

    def get_link(self, obj: ReferralInvite) -> str:
        return invite_link(obj)

    @extend_schema_field(InviteQrOutput(allow_null=True))
    def get_qr(self, obj: ReferralInvite) -> dict | None:
        if not obj.qr_ticket:
            return None
        return {"ticket": obj.qr_ticket, "url": obj.qr_url, "image_url": obj.qr_image_url,
                "expires_at": obj.qr_expires_at, "is_permanent": obj.qr_expires_at is None}


class LeaderboardParams(serializers.Serializer):
    by = serializers.ChoiceField(choices=["invites", "gmv"], default="invites")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


class LeaderboardRowOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    member = MemberBrief()
    successes = serializers.IntegerField()
    invites = serializers.IntegerField()
    buyers = serializers.IntegerField()
    gmv_fen = serializers.IntegerField()


class AttributionParams(serializers.Serializer):
    status = serializers.ChoiceField(choices=ReferralAttribution.Status.choices, required=False)
    reason = serializers.ChoiceField(choices=ReferralAttribution.Reason.choices, required=False)
    inviter = serializers.IntegerField(required=False, min_value=1, source="inviter_id")
    invitee = serializers.IntegerField(required=False, min_value=1, source="invitee_id")


class AttributionOutput(serializers.ModelSerializer):
    inviter = serializers.IntegerField(source="inviter_id")
    invitee = serializers.IntegerField(source="invitee_id")

    class Meta:
        model = ReferralAttribution
        fields = ("id", "invite", "inviter", "invitee", "status", "reason", "source",
                  "is_new_member", "occurred_at", "followed_at", "registered_at",
                  "first_purchase_at", "first_purchase_fen", "successful_at", "reviewed_by",
                  "reviewed_at", "note")


class ReviewInput(StrictSerializer):
    approve = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


# Lotteries


class PrizeInput(StrictSerializer):
    id = serializers.IntegerField(required=False, min_value=1,
                                  help_text=_("已有奖品的 id（修改它）；不填为新增"))
    name = serializers.CharField(max_length=64)
    kind = PrizeKindField(default="reward")
    action = RewardKindField(required=False, allow_blank=True)
    params = serializers.DictField(default=dict)
    weight = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    stock = serializers.IntegerField(min_value=0, max_value=100_000_000, default=0,
                                     help_text=_("剩余库存"))
    is_active = serializers.BooleanField(default=True)


class LotteryInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    is_active = serializers.BooleanField(required=False)
    starts_at = DateTimeField(required=False)
    ends_at = DateTimeField(required=False, allow_null=True)
    allow_draw = serializers.BooleanField(required=False)
    allow_product_code = serializers.BooleanField(required=False)
    points_cost = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    daily_limit = serializers.IntegerField(required=False, min_value=0, max_value=10_000)
    total_limit = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    tier_weighted = serializers.BooleanField(required=False)
    prizes = PrizeInput(many=True, required=False)


class PrizeOutput(serializers.ModelSerializer):
    kind = PrizeKindField(read_only=True)
    action = RewardKindField(read_only=True, allow_blank=True)

    class Meta:
        model = LotteryPrize
        fields = ("id", "name", "kind", "action", "params", "weight", "stock", "awarded",
                  "is_active")


class LotteryOutput(serializers.ModelSerializer):
    prizes = PrizeOutput(many=True, read_only=True)

    class Meta:
        model = Lottery
        fields = ("id", "name", "description", "is_active", "starts_at", "ends_at",
                  "allow_draw", "allow_product_code", "points_cost", "daily_limit",
                  "total_limit", "tier_weighted", "prizes", "created_by", "created_at",
                  "updated_at")


class DrawInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    product_code = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                         default="", help_text=_("一物一码：扫到的商品码"))


class DrawPrizeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    action = serializers.CharField()


class DrawOutput(serializers.ModelSerializer):
    member = serializers.IntegerField(source="member_id")
    prize = DrawPrizeOutput()

    class Meta:
        model = LotteryDraw
        fields = ("id", "lottery", "member", "prize", "outcome", "source", "product_code",
                  "points_spent", "weight_multiplier", "reward_outcome", "created_at")


class DrawListParams(serializers.Serializer):
    member = serializers.IntegerField(required=False, min_value=1)
    outcome = serializers.ChoiceField(choices=LotteryDraw.Outcome.choices, required=False)


class CodesInput(StrictSerializer):
    codes = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                  max_length=10_000)
    count = serializers.IntegerField(required=False, min_value=1, max_value=10_000,
                                     help_text=_("生成这么多个随机商品码"))

    def validate(self, attrs: dict) -> dict:
        if ("codes" in attrs) == ("count" in attrs):
            raise serializers.ValidationError({"codes": [_("codes 和 count 二选一。")]})
        return attrs


class CodesOutput(serializers.Serializer):
    added = serializers.IntegerField()
    codes = serializers.ListField(child=serializers.CharField())
