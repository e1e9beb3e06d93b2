from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from scrm.api.serializers import DateTimeField, JobOutput, StrictSerializer  # noqa: F401
from tags.models import Tag


class TagGroupInput(StrictSerializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)
    sort_order = serializers.IntegerField(required=False, min_value=-10000, max_value=10000)


class TagGroupOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    color = serializers.CharField()
    sort_order = serializers.IntegerField()


class TagInput(StrictSerializer):
    group = serializers.IntegerField(help_text=_("标签组 ID"))
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Tag.Kind.choices, required=False)
    target = serializers.ChoiceField(choices=Tag.Target.choices, required=False)
    rule = serializers.JSONField(required=False, allow_null=True)
    external_source = serializers.CharField(max_length=16, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


class TagOutput(serializers.Serializer):
    id = serializers.IntegerField()
    group = serializers.IntegerField(source="group_id")
    group_name = serializers.CharField(source="group.name")
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    target = serializers.CharField()
    rule = serializers.JSONField()
    external_source = serializers.CharField()
    external_id = serializers.CharField()
    member_count = serializers.IntegerField()
    created_at = DateTimeField()
    updated_at = DateTimeField()


class MemberTagOutput(serializers.Serializer):
    tag = serializers.IntegerField(source="tag_id")
    name = serializers.CharField(source="tag.name")
    group = serializers.CharField(source="tag.group.name")
    source = serializers.CharField()
    tagged_by = serializers.CharField()
    created_at = DateTimeField()


class BulkInput(StrictSerializer):
    action = serializers.ChoiceField(choices=["add", "remove"])
    member_ids = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                       required=False, allow_empty=False, max_length=100_000)
    segment = serializers.IntegerField(required=False)
    expression = serializers.JSONField(required=False)

    def validate(self, attrs):
        given = [key for key in ("member_ids", "segment", "expression") if key in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                _("member_ids、segment、expression 三者必须且只能给一个。"))
        return attrs


class ExpressionInput(StrictSerializer):
    expression = serializers.JSONField()


class SegmentInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    expression = serializers.JSONField()


class SegmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    expression = serializers.JSONField()
    created_by = serializers.CharField()
    last_count = serializers.IntegerField()
    last_counted_at = DateTimeField()
    created_at = DateTimeField()
    updated_at = DateTimeField()


class SnapshotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    segment = serializers.IntegerField(source="segment_id")
    member_count = serializers.IntegerField()
    expression = serializers.JSONField()
    created_by = serializers.CharField()
    created_at = DateTimeField()
