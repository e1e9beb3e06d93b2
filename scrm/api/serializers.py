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
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
