from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from pyroaring import BitMap
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from members.api.serializers import MemberOutput
from members.selectors import member_get
from scrm.access import MEMBERS_READ, MEMBERS_WRITE, SEGMENTS_WRITE, TAGS_MANAGE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.views import TenantApiView
from tags.api import serializers as io
from tags.models import MemberTag, Segment, Tag, TagGroup
from tags.services import rules, segments, tagging, taxonomy

TAXONOMY_SCOPES = {"GET": MEMBERS_READ, "*": TAGS_MANAGE}
SEGMENT_SCOPES = {"GET": MEMBERS_READ, "*": SEGMENTS_WRITE}


def _get(queryset, pk: int):
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise NotFound(_("未找到。"))
    return row


def _page(request, view, queryset, serializer, ordering="-id"):
    paginator = CursorPagination()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class TagGroupListCreateApi(TenantApiView):
    required_scopes = TAXONOMY_SCOPES

    @extend_schema(responses=io.TagGroupOutput(many=True), operation_id="tag_groups_list")
    def get(self, request):
        return Response(io.TagGroupOutput(TagGroup.objects.order_by("sort_order", "id"),
                                          many=True).data)

    @extend_schema(request=io.TagGroupInput, responses={201: io.TagGroupOutput},
                   operation_id="tag_groups_create")
    @idempotent
    def post(self, request):
        data = io.TagGroupInput(data=request.data)
        data.is_valid(raise_exception=True)
        group = taxonomy.tag_group_save(actor=self.actor, **data.validated_data)
        return Response(io.TagGroupOutput(group).data, status=status.HTTP_201_CREATED)


class TagGroupDetailApi(TenantApiView):
    required_scopes = TAXONOMY_SCOPES

    @extend_schema(request=io.TagGroupInput, responses=io.TagGroupOutput,
                   operation_id="tag_groups_update")
    def patch(self, request, group_id: int):
        group = _get(TagGroup.objects, group_id)
        data = io.TagGroupInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        group = taxonomy.tag_group_save(actor=self.actor, group=group, **data.validated_data)
        return Response(io.TagGroupOutput(group).data)

    @extend_schema(responses={204: None}, operation_id="tag_groups_delete")
    def delete(self, request, group_id: int):
        taxonomy.tag_group_delete(actor=self.actor, group=_get(TagGroup.objects, group_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _tag_input(data: dict) -> dict:
    if "group" in data:
        data["group"] = _get(TagGroup.objects, data["group"])
    return data


class TagListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = TAXONOMY_SCOPES

    @extend_schema(parameters=[OpenApiParameter("group", int), OpenApiParameter("kind", str),
                               OpenApiParameter("q", str, description="name contains")],
                   responses=io.TagOutput(many=True), operation_id="tags_list")
    def get(self, request):
        tags = Tag.objects.select_related("group")
        params = request.query_params
        if params.get("group", "").isdigit():
            tags = tags.filter(group_id=int(params["group"]))
        if params.get("kind"):
            tags = tags.filter(kind=params["kind"])
        if params.get("q"):
            tags = tags.filter(name__icontains=params["q"])
        return _page(request, self, tags, io.TagOutput)

    @extend_schema(request=io.TagInput, responses={201: io.TagOutput}, operation_id="tags_create")
    @idempotent
    def post(self, request):
        data = io.TagInput(data=request.data)
        data.is_valid(raise_exception=True)
        tag = taxonomy.tag_save(actor=self.actor, **_tag_input(dict(data.validated_data)))
        return Response(io.TagOutput(tag).data, status=status.HTTP_201_CREATED)


class TagDetailApi(TenantApiView):
    required_scopes = TAXONOMY_SCOPES

    @extend_schema(responses=io.TagOutput, operation_id="tags_retrieve")
    def get(self, request, tag_id: int):
        return Response(io.TagOutput(_get(Tag.objects.select_related("group"), tag_id)).data)

    @extend_schema(request=io.TagInput, responses=io.TagOutput, operation_id="tags_update")
    def patch(self, request, tag_id: int):
        tag = _get(Tag.objects.select_related("group"), tag_id)
        data = io.TagInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tag = taxonomy.tag_save(actor=self.actor, tag=tag,
                                **_tag_input(dict(data.validated_data)))
        return Response(io.TagOutput(tag).data)

    @extend_schema(parameters=[OpenApiParameter("confirm", bool)],
                   responses={200: inline_serializer("TagDeleted", {
                       "members": serializers.IntegerField(),
                       "products": serializers.IntegerField(),
                       "segments": serializers.ListField(child=serializers.CharField()),
                       "rules": serializers.ListField(child=serializers.CharField())})},
                   operation_id="tags_delete")
    def delete(self, request, tag_id: int):
        tag = _get(Tag.objects.select_related("group"), tag_id)
        confirm = request.query_params.get("confirm", "").lower() in ("1", "true", "yes")
        return Response(taxonomy.tag_delete(actor=self.actor, tag=tag, confirm=confirm))


class TagRulePreviewApi(TenantApiView):
    required_scopes = {"*": TAGS_MANAGE}

    class RulePreviewInput(serializers.Serializer):
        rule = serializers.JSONField()

    @extend_schema(request=RulePreviewInput,
                   responses=inline_serializer("RulePreview",
                                               {"count": serializers.IntegerField()}),
                   operation_id="tags_rule_preview")
    def post(self, request):
        data = self.RulePreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"count": rules.rule_preview(data.validated_data["rule"])})


class TagBulkApi(TenantApiView):
    throttle_scope = "bulk"
    required_scopes = {"*": MEMBERS_WRITE}

    @extend_schema(request=io.BulkInput, responses={202: io.JobOutput},
                   operation_id="tags_bulk")
    @idempotent
    def post(self, request, tag_id: int):
        tag = _get(Tag.objects, tag_id)
        data = io.BulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        member_nos = self._targets(data.validated_data)
        job = tagging.tag_bulk_job_create(actor=self.actor, tag=tag,
                                          action=data.validated_data["action"],
                                          member_nos=member_nos)
        return Response(io.JobOutput(job).data, status=status.HTTP_202_ACCEPTED)

    def _targets(self, data: dict) -> BitMap:
        if "member_ids" in data:
            return tagging.member_nos_of(actor=self.actor, member_ids=data["member_ids"])
        if self.actor.guide_id is not None or self.actor.store_id is not None:
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied(_("导购和店长只能按会员列表批量打标签。"))
        if "segment" in data:
            return segments.expression_members(_get(Segment.objects, data["segment"]).expression)
        return segments.expression_members(data["expression"])


class MemberTagBase(TenantApiView):
    required_scopes = {"GET": MEMBERS_READ, "*": MEMBERS_WRITE}

    def _member(self, member_id: int):
        member = member_get(actor=self.actor, member_id=member_id)
        if member is None:
            raise NotFound(_("未找到。"))
        return member


class MemberTagsApi(MemberTagBase):

    class MemberTagInput(serializers.Serializer):
        tag_id = serializers.IntegerField()

    @extend_schema(responses=io.MemberTagOutput(many=True), operation_id="member_tags_list")
    def get(self, request, member_id: int):
        member = self._member(member_id)
        rows = MemberTag.objects.filter(member=member).select_related("tag__group").order_by("id")
        return Response(io.MemberTagOutput(rows, many=True).data)

    @extend_schema(request=MemberTagInput, responses={201: io.MemberTagOutput(many=True),
                                                       200: io.MemberTagOutput(many=True)},
                   operation_id="member_tags_add")
    @idempotent
    def post(self, request, member_id: int):
        member = self._member(member_id)
        data = self.MemberTagInput(data=request.data)
        data.is_valid(raise_exception=True)
        tag = _get(Tag.objects, data.validated_data["tag_id"])
        created = tagging.member_tag_add(actor=self.actor, member=member, tag=tag)
        rows = MemberTag.objects.filter(member=member).select_related("tag__group").order_by("id")
        return Response(io.MemberTagOutput(rows, many=True).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MemberTagDeleteApi(MemberTagBase):
    @extend_schema(responses={204: None}, operation_id="member_tags_remove")
    def delete(self, request, member_id: int, tag_id: int):
        member = self._member(member_id)
        tag = _get(Tag.objects, tag_id)
        if not tagging.member_tag_remove(actor=self.actor, member=member, tag=tag):
            raise NotFound(_("该会员没有这个标签。"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountApi(TenantApiView):
    required_scopes = {"*": MEMBERS_READ}

    @extend_schema(request=io.ExpressionInput,
                   responses=inline_serializer("SegmentCount",
                                               {"count": serializers.IntegerField()}),
                   operation_id="segments_count")
    def post(self, request):
        data = io.ExpressionInput(data=request.data)
        data.is_valid(raise_exception=True)
        member_nos = segments.expression_members(data.validated_data["expression"])
        return Response({"count": len(segments.visible_members(actor=self.actor,
                                                               member_nos=member_nos))})


class SegmentListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = SEGMENT_SCOPES

    @extend_schema(responses=io.SegmentOutput(many=True), operation_id="segments_list")
    def get(self, request):
        return _page(request, self, Segment.objects.all(), io.SegmentOutput)

    @extend_schema(request=io.SegmentInput, responses={201: io.SegmentOutput},
                   operation_id="segments_create")
    @idempotent
    def post(self, request):
        data = io.SegmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        segment = segments.segment_save(actor=self.actor, **data.validated_data)
        segments.segment_count(segment=segment)
        segment.refresh_from_db()
        return Response(io.SegmentOutput(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(TenantApiView):
    required_scopes = SEGMENT_SCOPES

    @extend_schema(responses=io.SegmentOutput, operation_id="segments_retrieve")
    def get(self, request, segment_id: int):
        segment = _get(Segment.objects, segment_id)
        segments.segment_count(segment=segment)
        segment.refresh_from_db()
        return Response(io.SegmentOutput(segment).data)

    @extend_schema(request=io.SegmentInput, responses=io.SegmentOutput,
                   operation_id="segments_update")
    def patch(self, request, segment_id: int):
        segment = _get(Segment.objects, segment_id)
        data = io.SegmentInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        segment = segments.segment_save(actor=self.actor, segment=segment,
                                        **data.validated_data)
        if "expression" in data.validated_data:
            segments.segment_count(segment=segment)
            segment.refresh_from_db()
        return Response(io.SegmentOutput(segment).data)

    @extend_schema(responses={204: None}, operation_id="segments_delete")
    def delete(self, request, segment_id: int):
        segments.segment_delete(actor=self.actor, segment=_get(Segment.objects, segment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersApi(TenantApiView):
    required_scopes = {"*": MEMBERS_READ}

    @extend_schema(parameters=[OpenApiParameter("after", int, description="member_no cursor"),
                               OpenApiParameter("page_size", int)],
                   responses=inline_serializer("SegmentMembers", {
                       "count": serializers.IntegerField(),
                       "next_after": serializers.IntegerField(allow_null=True),
                       "results": MemberOutput(many=True)}),
                   operation_id="segments_members")
    def get(self, request, segment_id: int):
        segment = _get(Segment.objects, segment_id)
        member_nos = segments.visible_members(
            actor=self.actor, member_nos=segments.expression_members(segment.expression))
        after = request.query_params.get("after", "")
        size = request.query_params.get("page_size", "")
        size = min(max(int(size), 1), 500) if size.isdecimal() else 50
        # Member numbers are 32-bit: a cursor past them all is the end.
        after = min(int(after), 2**32 - 1) if after.isdecimal() else None
        page, next_after = segments.segment_page(member_nos=member_nos, after=after, size=size)
        return Response({"count": len(member_nos), "next_after": next_after,
                         "results": MemberOutput(page, many=True).data})


class SegmentSnapshotApi(TenantApiView):
    required_scopes = {"GET": MEMBERS_READ, "*": SEGMENTS_WRITE}

    @extend_schema(responses=io.SnapshotOutput(many=True), operation_id="segments_snapshots")
    def get(self, request, segment_id: int):
        segment = _get(Segment.objects, segment_id)
        return Response(io.SnapshotOutput(segment.snapshots.order_by("-created_at")[:50],
                                          many=True).data)

    @extend_schema(request=None, responses={201: io.SnapshotOutput},
                   operation_id="segments_snapshot")
    @idempotent
    def post(self, request, segment_id: int):
        segment = _get(Segment.objects, segment_id)
        snapshot = segments.segment_snapshot(actor=self.actor, segment=segment)
        return Response(io.SnapshotOutput(snapshot).data, status=status.HTTP_201_CREATED)
