"""Coupons API: templates (with their results), issuing, a member's and everyone's coupons,
redemption at checkout, cancellation."""

import uuid

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns.coupons import selectors, services
from campaigns.coupons.api import serializers as io
from campaigns.coupons.models import Coupon, CouponSource, CouponTemplate
from campaigns.coupons.services.common import unique
from members.models import Member, Order
from members.selectors import member_visible
from scrm.access import COUPONS_MANAGE, COUPONS_READ, COUPONS_REDEEM
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.serializers import shared
from scrm.api.views import TenantApiView

TEMPLATE_SCOPES = {"GET": COUPONS_READ, "*": COUPONS_MANAGE}


def _params(serializer_class: type[serializers.Serializer], request) -> dict:
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _missing() -> NotFound:
    return NotFound(_("未找到。"))


def _paginated(view, request, queryset, serializer_class):
    paginator = CursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def issue_key(request) -> str:
    """The service's key: the request's Idempotency-Key, namespaced (``api:…``) so it never
    meets the keys the system derives (``mall:…``, ``birthday:…``); without one, a key of
    its own, so the request issues one coupon."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return f"api:{key}" if key else f"api:{uuid.uuid4().hex}"


class CouponApiBase(TenantApiView):
    def get_template(self, template_id: int) -> CouponTemplate:
        template = CouponTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise _missing()
        return template

    def get_member(self, member_id: int) -> Member:
        member = member_visible(actor=self.actor).filter(pk=member_id).first()
        if member is None:
            raise _missing()
        return member

    def get_coupon(self, code: str) -> Coupon:
        coupon = selectors.coupon_visible(actor=self.actor, code=code)
        if coupon is None:
            raise _missing()
        return coupon

    def template_detail(self, template: CouponTemplate) -> Response:
        template.stats = selectors.coupon_template_stats(template=template)
        return Response(io.CouponTemplateDetailOutput(template).data)


class CouponTemplateListCreateApi(CouponApiBase):
    pagination_class = CursorPagination
    required_scopes = TEMPLATE_SCOPES

    @extend_schema(parameters=[io.CouponTemplateListParams],
                   responses=io.CouponTemplateOutput(many=True),
                   operation_id="coupon_templates_list")
    def get(self, request):
        templates = selectors.coupon_template_list(filters=_params(io.CouponTemplateListParams,
                                                                   request))
        return _paginated(self, request, templates, io.CouponTemplateOutput)

    @extend_schema(request=io.CouponTemplateInput, responses={201: io.CouponTemplateDetailOutput},
                   operation_id="coupon_templates_create")
    @idempotent
    def post(self, request):
        data = io.CouponTemplateInput(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.coupon_template_save(actor=self.actor,
                                                 changes=dict(data.validated_data))
        response = self.template_detail(template)
        response.status_code = status.HTTP_201_CREATED
        return response


class CouponTemplateDetailApi(CouponApiBase):
    required_scopes = TEMPLATE_SCOPES

    @extend_schema(responses=io.CouponTemplateDetailOutput,
                   operation_id="coupon_templates_retrieve")
    def get(self, request, template_id: int):
        return self.template_detail(self.get_template(template_id))

    @extend_schema(request=io.CouponTemplateInput, responses=io.CouponTemplateDetailOutput,
                   operation_id="coupon_templates_update")
    def patch(self, request, template_id: int):
        template = self.get_template(template_id)
        data = io.CouponTemplateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        template = services.coupon_template_save(actor=self.actor, template=template,
                                                 changes=dict(data.validated_data))
        return self.template_detail(template)


class CouponIssueApi(CouponApiBase):
    """Issue one coupon to one member, by hand or from a partner system."""

    required_scopes = {"POST": COUPONS_MANAGE}

    @extend_schema(request=io.CouponIssueInput, responses={201: io.CouponOutput},
                   operation_id="coupons_issue")
    @idempotent
    def post(self, request):
        data = io.CouponIssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        template = selectors.coupon_template_find(ref=values["template"])
        if template is None:
            raise _missing()
        coupon = services.coupon_issue(
            actor=self.actor, template=template, member=self.get_member(values["member"]),
            key=issue_key(request), source=CouponSource.MANUAL)
        return Response(shared(io.CouponOutput).to_representation(coupon),
                        status=status.HTTP_201_CREATED)


class CouponListApi(CouponApiBase):
    pagination_class = CursorPagination
    required_scopes = {"GET": COUPONS_READ}

    @extend_schema(parameters=[io.CouponListParams], responses=io.CouponOutput(many=True),
                   operation_id="coupons_list")
    def get(self, request):
        return _paginated(self, request, selectors.coupon_list(
            actor=self.actor, filters=_params(io.CouponListParams, request)), io.CouponOutput)


class CouponDetailApi(CouponApiBase):
    required_scopes = {"GET": COUPONS_READ}

    @extend_schema(responses=io.CouponOutput, operation_id="coupons_retrieve")
    def get(self, request, code: str):
        return Response(shared(io.CouponOutput).to_representation(self.get_coupon(code)))


class CouponRedeemApi(CouponApiBase):
    """Redeem a coupon at checkout: on an order, or before the order exists.  Anyone who may
    redeem can redeem any of the tenant's codes: the customer presents it."""

    required_scopes = {"POST": COUPONS_REDEEM}

    @extend_schema(request=io.CouponRedeemInput, responses=io.CouponOutput,
                   operation_id="coupons_redeem")
    @idempotent
    def post(self, request):
        data = io.CouponRedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        order = self._order(values["order"]) if "order" in values else None
        coupon = services.coupon_redeem(
            actor=self.actor, code=values["code"], order=order,
            order_amount_fen=values.get("order_amount_fen"), store_code=values.get("store"),
            skus=values.get("skus", ()))
        return Response(shared(io.CouponOutput).to_representation(coupon))

    def _order(self, ref: int | dict) -> Order:
        orders = Order.objects.all()
        order = unique(orders.filter(pk=ref) if isinstance(ref, int) else orders.filter(**ref))
        if order is None:
            raise _missing()
        return order


class CouponCancelApi(CouponApiBase):
    required_scopes = {"POST": COUPONS_MANAGE}

    @extend_schema(request=io.CouponCancelInput, responses=io.CouponOutput,
                   operation_id="coupons_cancel")
    @idempotent
    def post(self, request, code: str):
        coupon = self.get_coupon(code)
        data = io.CouponCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = services.coupon_cancel(actor=self.actor, coupon=coupon,
                                        reason=data.validated_data["reason"])
        return Response(shared(io.CouponOutput).to_representation(coupon))


class MemberCouponListApi(CouponApiBase):
    pagination_class = CursorPagination
    required_scopes = {"GET": COUPONS_READ}

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Coupon.Status.values)],
                   responses=io.CouponOutput(many=True), operation_id="member_coupons_list")
    def get(self, request, member_id: int):
        member = self.get_member(member_id)
        filters = {**_params(io.MemberCouponListParams, request), "member": member.pk}
        return _paginated(self, request, selectors.coupon_list(actor=self.actor,
                                                               filters=filters), io.CouponOutput)
