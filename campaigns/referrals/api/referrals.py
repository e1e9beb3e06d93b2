"""Referral (裂变) campaigns API: campaigns and their reward rules, a member's invite (and its
QR code), the KOC leaderboard, attributions and the review of held ones."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns.referrals import selectors, services
from campaigns.referrals.api import serializers as io
from campaigns.referrals.models import ReferralAttribution, ReferralCampaign
from members.models import Member
from members.selectors import member_visible
from scrm.access import CAMPAIGNS_MANAGE, CAMPAIGNS_READ, MEMBERS_WRITE
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.views import TenantApiView


def params_of(serializer_class: type[serializers.Serializer], request) -> dict:
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def missing() -> NotFound:
    return NotFound(_("未找到。"))


def member_for(actor, member_id: int) -> Member:
    """The member, if this actor may see them (a guide their own customers)."""
    member = member_visible(actor=actor).filter(pk=member_id).first()
    if member is None:
        raise missing()
    return member


def _campaign(campaign_id: int) -> ReferralCampaign:
    campaign = ReferralCampaign.objects.prefetch_related("rewards").filter(pk=campaign_id).first()
    if campaign is None:
        raise missing()
    return campaign


def _detail(campaign_id: int) -> dict:
    campaign = _campaign(campaign_id)
    campaign.stats = selectors.referral_stats(campaign=campaign)
    return io.ReferralDetailOutput(campaign).data


def _changes(values: dict) -> tuple[dict, list | None]:
    values = dict(values)
    rewards = values.pop("rewards", None)
    return values, [dict(reward) for reward in rewards] if rewards is not None else None


class ReferralListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": CAMPAIGNS_READ, "POST": CAMPAIGNS_MANAGE}

    @extend_schema(responses=io.ReferralOutput(many=True), operation_id="referrals_list")
    def get(self, request):
        paginator = CursorPagination()
        paginator.ordering = ("-id",)
        page = paginator.paginate_queryset(
            ReferralCampaign.objects.prefetch_related("rewards"), request, view=self)
        return paginator.get_paginated_response(io.ReferralOutput(page, many=True).data)

    @extend_schema(request=io.ReferralInput, responses={201: io.ReferralDetailOutput},
                   operation_id="referrals_create")
    @idempotent
    def post(self, request):
        data = io.ReferralInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes, rewards = _changes(data.validated_data)
        campaign = services.referral_campaign_save(actor=self.actor, changes=changes,
                                                   rewards=rewards if rewards is not None else [])
        return Response(_detail(campaign.pk), status=status.HTTP_201_CREATED)


class ReferralDetailApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ, "PATCH": CAMPAIGNS_MANAGE}

    @extend_schema(responses=io.ReferralDetailOutput, operation_id="referrals_retrieve")
    def get(self, request, campaign_id: int):
        return Response(_detail(campaign_id))

    @extend_schema(request=io.ReferralInput(partial=True), responses=io.ReferralDetailOutput,
                   operation_id="referrals_update")
    def patch(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = io.ReferralInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes, rewards = _changes(data.validated_data)
        services.referral_campaign_save(actor=self.actor, campaign=campaign, changes=changes,
                                        rewards=rewards)
        return Response(_detail(campaign_id))


class ReferralInviteApi(TenantApiView):
    """A member's invite in the campaign (made the first time), with its link and, when
    ``qr`` is asked for, its OA QR code."""

    required_scopes = {"POST": MEMBERS_WRITE}

    @extend_schema(request=io.InviteInput, responses={201: io.InviteOutput, 200: io.InviteOutput},
                   operation_id="referrals_invite")
    @idempotent
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = io.InviteInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_for(self.actor, data.validated_data["member"])
        invite, created = services.referral_invite_get(actor=self.actor, campaign=campaign,
                                                       inviter=member)
        if data.validated_data["qr"]:
            invite = services.referral_invite_qr(actor=self.actor, invite=invite)
        return Response(io.InviteOutput(invite).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ReferralLeaderboardApi(TenantApiView):
    required_scopes = {"GET": CAMPAIGNS_READ}

    @extend_schema(parameters=[io.LeaderboardParams],
                   responses=io.LeaderboardRowOutput(many=True),
                   operation_id="referrals_leaderboard")
    def get(self, request, campaign_id: int):
        params = params_of(io.LeaderboardParams, request)
        rows = selectors.referral_leaderboard(campaign=_campaign(campaign_id), **params)
        return Response(io.LeaderboardRowOutput(rows, many=True).data)


class ReferralAttributionListApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": CAMPAIGNS_READ}

    @extend_schema(parameters=[io.AttributionParams],
                   responses=io.AttributionOutput(many=True),
                   operation_id="referrals_attributions")
    def get(self, request, campaign_id: int):
        filters = params_of(io.AttributionParams, request)
        attributions = selectors.attribution_list(campaign=_campaign(campaign_id),
                                                  filters=filters)
        paginator = CursorPagination()
        paginator.ordering = ("-id",)
        page = paginator.paginate_queryset(attributions, request, view=self)
        return paginator.get_paginated_response(io.AttributionOutput(page, many=True).data)


class ReferralAttributionReviewApi(TenantApiView):
    """Approve (rewarded for what the invitee did meanwhile) or reject a held attribution."""

    required_scopes = {"POST": CAMPAIGNS_MANAGE}

    @extend_schema(request=io.ReviewInput, responses=io.AttributionOutput,
                   operation_id="referrals_attribution_review")
    def post(self, request, campaign_id: int, attribution_id: int):
        attribution = ReferralAttribution.objects.filter(
            campaign=_campaign(campaign_id), pk=attribution_id).first()
        if attribution is None:
            raise missing()
        data = io.ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        attribution = services.referral_attribution_review(
            actor=self.actor, attribution=attribution, **data.validated_data)
        return Response(io.AttributionOutput(attribution).data)
