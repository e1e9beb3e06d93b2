from datetime import UTC
from functools import cache

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo never passes silently."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [_("未知字段。")] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


# Asia/Shanghai's rules begin in 1901; before that zoneinfo answers local mean time, whose
# offset (+08:05:43) is no valid RFC 3339 offset.  No member, order or schedule is older.
EARLIEST_YEAR = 1901


class DateTimeField(serializers.DateTimeField):
    """DRF's date-time with the years this product can hold and show: from 1901 on."""

    default_error_messages = {"out_of_range": _("日期时间须在 1901 年及以后。")}

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if parsed.year < EARLIEST_YEAR or (
                parsed.utcoffset() is not None and parsed.astimezone(UTC).year < EARLIEST_YEAR):
            self.fail("out_of_range")
        return parsed


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
                      "example": "22:00:00"})
class LocalTimeField(serializers.TimeField):
    """A time of day in Asia/Shanghai, as ``HH:MM[:SS]``: the schema's ``time`` format
    would require an offset, which a time of day here never has."""


@cache
def shared(serializer_class: type[serializers.BaseSerializer]) -> serializers.BaseSerializer:
    """One instance of ``serializer_class`` for the whole process, for ``run_validation`` and
    ``to_representation`` only, which keep nothing on the instance.  Building a serializer
    deep-copies all its (nested) fields, which costs more than validating or showing one
    object with it."""
    return serializer_class()


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    params = serializers.JSONField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    result = serializers.JSONField()
    error = serializers.CharField()
    created_by = serializers.CharField()
    created_at = DateTimeField()
    started_at = DateTimeField(allow_null=True)
    finished_at = DateTimeField(allow_null=True)
