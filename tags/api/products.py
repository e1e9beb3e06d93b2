"""Products, their tags, and people-goods matching (人货匹配): recommendations for a member and
a product's likely audience."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from members.selectors import member_get
from scrm.access import MEMBERS_READ, TAGS_MANAGE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.serializers import DateTimeField, JobOutput, StrictSerializer
from scrm.api.views import TenantApiView
from tags.models import Product, Tag
from tags.services import products as services

PRODUCT_SCOPES = {"GET": MEMBERS_READ, "*": TAGS_MANAGE}
RECOMMENDATIONS_MAX = 100


def _product(product_id: int) -> Product:
    product = services.product_list().filter(pk=product_id).first()
    if product is None:
        raise NotFound(_("未找到。"))
    return product


class ProductTagOutput(serializers.Serializer):
    id = serializers.IntegerField(source="tag_id")
    name = serializers.CharField(source="tag.name")
    group = serializers.CharField(source="tag.group.name")


class ProductOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price_fen = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    tags = ProductTagOutput(source="product_tags.all", many=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()


class ProductUpdateInput(StrictSerializer):
    name = serializers.CharField(max_length=128)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True)
    price_fen = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class ProductCreateInput(ProductUpdateInput):
    sku = serializers.CharField(max_length=64)


class ProductListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = PRODUCT_SCOPES

    @extend_schema(parameters=[OpenApiParameter("q", str, description="name or SKU contains"),
                               OpenApiParameter("category", str),
                               OpenApiParameter("tag", int, description="carries this tag")],
                   responses=ProductOutput(many=True), operation_id="products_list")
    def get(self, request):
        params = request.query_params
        filters = {"q": params.get("q", ""), "category": params.get("category", "")}
        if params.get("tag", "").isdigit():
            filters["tag"] = int(params["tag"])
        paginator = CursorPagination()
        page = paginator.paginate_queryset(services.product_list(filters=filters), request,
                                           view=self)
        return paginator.get_paginated_response(ProductOutput(page, many=True).data)

    @extend_schema(request=ProductCreateInput, responses={201: ProductOutput},
                   operation_id="products_create")
    @idempotent
    def post(self, request):
        data = ProductCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(actor=self.actor, **data.validated_data)
        return Response(ProductOutput(_product(product.pk)).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(TenantApiView):
    required_scopes = PRODUCT_SCOPES

    @extend_schema(responses=ProductOutput, operation_id="products_retrieve")
    def get(self, request, product_id: int):
        return Response(ProductOutput(_product(product_id)).data)

    @extend_schema(request=ProductUpdateInput, responses=ProductOutput,
                   operation_id="products_update")
    def patch(self, request, product_id: int):
        product = _product(product_id)
        data = ProductUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.product_update(actor=self.actor, product=product, **data.validated_data)
        return Response(ProductOutput(_product(product_id)).data)


class ProductTagInput(StrictSerializer):
    tag_id = serializers.IntegerField()


class ProductTagsApi(TenantApiView):
    required_scopes = {"*": TAGS_MANAGE}

    @extend_schema(request=ProductTagInput, responses={201: ProductOutput, 200: ProductOutput},
                   operation_id="product_tags_add")
    @idempotent
    def post(self, request, product_id: int):
        product = _product(product_id)
        data = ProductTagInput(data=request.data)
        data.is_valid(raise_exception=True)
        tag = Tag.objects.filter(pk=data.validated_data["tag_id"]).first()
        if tag is None:
            raise NotFound(_("未找到。"))
        created = services.product_tag_add(actor=self.actor, product=product, tag=tag)
        return Response(ProductOutput(_product(product_id)).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ProductTagDeleteApi(TenantApiView):
    required_scopes = {"*": TAGS_MANAGE}

    @extend_schema(responses={204: None}, operation_id="product_tags_remove")
    def delete(self, request, product_id: int, tag_id: int):
        product = _product(product_id)
        tag = Tag.objects.filter(pk=tag_id).first()
        if tag is None or not services.product_tag_remove(actor=self.actor, product=product,
                                                          tag=tag):
            raise NotFound(_("该商品没有这个标签。"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductAudienceInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=services.AUDIENCE_MAX, default=1000)


class ProductAudienceApi(TenantApiView):
    """Queue the build of the members most likely to want the product, as a system tag and a
    segment on it.  The finished job's ``result`` holds the segment and the top members."""

    required_scopes = {"*": TAGS_MANAGE}

    @extend_schema(request=ProductAudienceInput, responses={202: JobOutput},
                   operation_id="products_audience")
    @idempotent
    def post(self, request, product_id: int):
        product = _product(product_id)
        data = ProductAudienceInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.product_audience_job_create(actor=self.actor, product=product,
                                                   limit=data.validated_data["limit"])
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class TagWeightOutput(serializers.Serializer):
    tag = serializers.IntegerField()
    name = serializers.CharField()
    weight = serializers.FloatField()


class ProductBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price_fen = serializers.IntegerField(allow_null=True)


class RecommendationOutput(serializers.Serializer):
    product = ProductBriefOutput()
    score = serializers.FloatField()
    already_bought = serializers.BooleanField()
    matched_tags = TagWeightOutput(many=True, help_text=_("解释：该商品上会员偏好的标签及权重"))


class RecommendationsOutput(serializers.Serializer):
    member = serializers.IntegerField()
    preferences = TagWeightOutput(many=True)
    results = RecommendationOutput(many=True)


def _weight(tag_id: int, name: str, weight: float) -> dict:
    return {"tag": tag_id, "name": name, "weight": round(weight, 4)}


class RecommendationParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=RECOMMENDATIONS_MAX, default=10)


class MemberRecommendationsApi(TenantApiView):
    """Products the member most likely wants, from the tags of what they bought (recent
    purchases weigh more), each with the matched tags that explain it."""

    required_scopes = {"*": MEMBERS_READ}

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1–100, default 10")],
                   responses=RecommendationsOutput, operation_id="member_recommendations")
    def get(self, request, member_id: int):
        member = member_get(actor=self.actor, member_id=member_id)
        if member is None:
            raise NotFound(_("未找到。"))
        params = RecommendationParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        weights, ranking = services.product_recommend(member=member,
                                                      limit=params.validated_data["limit"])
        names = dict(Tag.objects.filter(pk__in=list(weights)).values_list("pk", "name"))
        preferences = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
        return Response(RecommendationsOutput({
            "member": member.pk,
            "preferences": [_weight(tag_id, names[tag_id], weight)
                            for tag_id, weight in preferences],
            "results": [{
                "product": item.product, "score": round(item.score, 4),
                "already_bought": item.already_bought,
                "matched_tags": [_weight(tag.pk, tag.name, weight)
                                 for tag, weight in item.matched],
            } for item in ranking],
        }).data)
