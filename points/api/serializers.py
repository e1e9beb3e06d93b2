import re
from datetime import date
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from points.models import PointsPolicy
from scrm.api.serializers import DateTimeField, StrictSerializer

MAX_POINTS = 100_000_000
# References the system writes itself; partners pick their own (``mall_order``, ``campaign``).
RESERVED_REFS = frozenset({"order", "lot", "entry", "member_merge", "checkin", "signup",
                           "birthday", "review"})
REF_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def validate_ref_type(value: str) -> None:
    if value and (not REF_TYPE.match(value) or value in RESERVED_REFS):
        raise serializers.ValidationError(
            _("关联类型须为小写字母、数字或下划线，且不能是系统保留值。"))


class PointsChangeInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS)
    reason = serializers.CharField(max_length=255)
    ref_type = serializers.CharField(max_length=32, required=False, default="",
                                     validators=[validate_ref_type])
    ref_id = serializers.CharField(max_length=64, required=False, default="")

    def validate(self, attrs):
        if bool(attrs["ref_type"]) != bool(attrs["ref_id"]):
            raise serializers.ValidationError({"ref_id": [_("ref_type 与 ref_id 须同时提供。")]})
        return attrs


class PointsEarnInput(PointsChangeInput):
    pass


class PointsRedeemInput(PointsChangeInput):
    pass


class PointsAdjustInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=-MAX_POINTS, max_value=MAX_POINTS,
                                      help_text=_("正数增加，负数扣减，不能为 0"))
    reason = serializers.CharField(max_length=255)

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError(_("不能为 0。"))
        return value


class PointsCheckInInput(StrictSerializer):
    pass


class PointsEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member = serializers.IntegerField(source="member_id")
    kind = serializers.CharField()
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    shortfall_delta = serializers.IntegerField()
    reason = serializers.CharField()
    ref_type = serializers.CharField()
    ref_id = serializers.CharField()
    operator = serializers.CharField()
    created_at = DateTimeField()


def entry_data(entry) -> dict:
    """What ``PointsEntryOutput`` gives, without building a serializer per entry (a batch
    answers with hundreds; the serializer cost a fifth of the request)."""
    created_at = timezone.localtime(entry.created_at).isoformat()
    if created_at.endswith("+00:00"):
        created_at = created_at[:-6] + "Z"
    return {
        "id": entry.pk, "member": entry.member_id, "kind": entry.kind, "points": entry.points,
        "balance_after": entry.balance_after, "shortfall_delta": entry.shortfall_delta,
        "reason": entry.reason, "ref_type": entry.ref_type, "ref_id": entry.ref_id,
        "operator": entry.operator, "created_at": created_at,
    }  # fmt: skip


class PointsTransactionOutput(serializers.Serializer):
    transaction = PointsEntryOutput(source="entry")
    balance = serializers.IntegerField()
    shortfall = serializers.IntegerField()


BATCH_LIMIT = 500


class PointsBatchOperationInput(PointsChangeInput):
    type = serializers.ChoiceField(choices=[("earn", _("获得")), ("redeem", _("使用"))])
    key = serializers.CharField(max_length=200, required=False, default="",
                                help_text=_("该操作的幂等键：重试时原样带上"))


class PointsBatchInput(StrictSerializer):
    operations = serializers.ListField(child=serializers.DictField(), allow_empty=False,
                                       max_length=BATCH_LIMIT)


class PointsBatchResultOutput(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["applied", "replayed", "error"])
    transaction = PointsEntryOutput(required=False)
    balance = serializers.IntegerField(required=False)
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)


class PointsBatchOutput(serializers.Serializer):
    results = PointsBatchResultOutput(many=True)
    applied = serializers.IntegerField()
    replayed = serializers.IntegerField()
    failed = serializers.IntegerField()


class PointsLotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    earned = serializers.IntegerField()
    remaining = serializers.IntegerField()
    earned_at = DateTimeField()
    expires_at = DateTimeField()


class PointsExpiringOutput(serializers.Serializer):
    within_days = serializers.IntegerField()
    points = serializers.IntegerField()
    first_expires_at = DateTimeField(allow_null=True)


class PointsSummaryQuery(serializers.Serializer):
    within_days = serializers.IntegerField(required=False, default=30, min_value=1,
                                           max_value=3650,
                                           help_text=_("列出多少天内将过期的积分"))


class PointsExpiryOutput(serializers.Serializer):
    expires_at = DateTimeField()
    points = serializers.IntegerField()


class PointsSummaryOutput(serializers.Serializer):
    member = serializers.IntegerField()
    balance = serializers.IntegerField()
    shortfall = serializers.IntegerField()
    lifetime_earned = serializers.IntegerField()
    value_fen = serializers.IntegerField()
    lots = PointsLotOutput(many=True)
    expiring = PointsExpiryOutput(many=True, help_text=_("到期时间内将过期的积分，按到期时间"))
    expiring_soon = PointsExpiringOutput()


class PointsCheckInRecordOutput(serializers.Serializer):
    day = serializers.DateField()
    streak = serializers.IntegerField()
    points = serializers.IntegerField()
    created_at = DateTimeField()


class PointsCheckInOutput(serializers.Serializer):
    checkin = PointsCheckInRecordOutput()
    balance = serializers.IntegerField()


def validate_members_days(value: list) -> list:
    for entry in value:
        if not isinstance(entry, str) or not _is_members_day(entry):
            raise serializers.ValidationError(
                _("会员日格式应为 \"15\"（每月 15 日）或 \"11-11\"（每年 11 月 11 日）。"))
    return value


def _is_members_day(entry: str) -> bool:
    if re.fullmatch(r"[1-9]|[12][0-9]|3[01]", entry):
        return True
    match = re.fullmatch(r"(\d\d)-(\d\d)", entry)
    if not match:
        return False
    try:
        date(2024, int(match[1]), int(match[2]))  # a leap year: 02-29 is a date
    except ValueError:
        return False
    return True


class PointsPolicyInput(StrictSerializer):
    points_per_yuan = serializers.DecimalField(max_digits=8, decimal_places=2,
                                               min_value=Decimal(0))
    rounding = serializers.ChoiceField(choices=PointsPolicy.Rounding.choices)
    expiry_mode = serializers.ChoiceField(choices=PointsPolicy.ExpiryMode.choices)
    expiry_days = serializers.IntegerField(min_value=1, max_value=36500)
    point_value_fen = serializers.IntegerField(min_value=0, max_value=1_000_000)
    daily_earn_cap = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    signup_points = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    birthday_points = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    checkin_points = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    checkin_streak_days = serializers.IntegerField(min_value=2, max_value=366)
    checkin_streak_bonus = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    review_points = serializers.IntegerField(min_value=0, max_value=MAX_POINTS)
    members_days = serializers.ListField(child=serializers.CharField(max_length=5),
                                         max_length=400, validators=[validate_members_days])
    members_day_multiplier = serializers.DecimalField(max_digits=4, decimal_places=2,
                                                      min_value=Decimal(1),
                                                      max_value=Decimal(10))


class PointsPolicyOutput(serializers.Serializer):
    points_per_yuan = serializers.DecimalField(max_digits=8, decimal_places=2)
    rounding = serializers.CharField()
    expiry_mode = serializers.CharField()
    expiry_days = serializers.IntegerField()
    point_value_fen = serializers.IntegerField()
    daily_earn_cap = serializers.IntegerField()
    signup_points = serializers.IntegerField()
    birthday_points = serializers.IntegerField()
    checkin_points = serializers.IntegerField()
    checkin_streak_days = serializers.IntegerField()
    checkin_streak_bonus = serializers.IntegerField()
    review_points = serializers.IntegerField()
    members_days = serializers.ListField(child=serializers.CharField())
    members_day_multiplier = serializers.DecimalField(max_digits=4, decimal_places=2)
    updated_at = DateTimeField()


class PointsValueOutput(serializers.Serializer):
    points = serializers.IntegerField()
    value_fen = serializers.IntegerField()


class PointsTierLiabilityOutput(serializers.Serializer):
    level = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    members = serializers.IntegerField()
    points = serializers.IntegerField()
    value_fen = serializers.IntegerField()


class PointsLiabilityOutput(serializers.Serializer):
    outstanding_points = serializers.IntegerField()
    outstanding_value_fen = serializers.IntegerField()
    point_value_fen = serializers.IntegerField()
    members_with_points = serializers.IntegerField()
    shortfall_points = serializers.IntegerField()
    expiring_30_days = PointsValueOutput()
    expiring_90_days = PointsValueOutput()
    by_tier = PointsTierLiabilityOutput(many=True)
    as_of = DateTimeField()
