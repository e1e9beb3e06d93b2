"""Points API: a member's balance and ledger, earn / redeem / adjust / check-in, the
policy, and the tenant's outstanding liability."""

from collections import Counter

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from members.models import Member
from members.selectors import member_visible
from points import selectors, services
from points.api import serializers as io
from points.services import PointsResult, Ref
from points.services.policy import expiry_for
from scrm.access import POINTS_ADJUST, POINTS_MANAGE, POINTS_READ, POINTS_WRITE
from scrm.api.errors import ApplicationError
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination
from scrm.api.views import TenantApiView


def ledger_key(request) -> str | None:
    """The request's Idempotency-Key, namespaced so it never meets the keys the system
    derives itself (``order:…``, ``expire:…``)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return f"api:{key}" if key else None


class PointsApiBase(TenantApiView):
    def get_member(self, member_id: int) -> Member:
        # members.selectors.member_get's visibility (a guide sees their own customers, a
        # store manager their store's; merged members too), without the identities and
        # stats it prefetches for the member API: one query on every points write.
        member = member_visible(actor=self.actor).filter(pk=member_id).first()
        if member is None:
            raise NotFound(_("未找到。"))
        return member

    def transaction_response(self, result: PointsResult) -> Response:
        return Response(io.PointsTransactionOutput(result).data,
                        status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class MemberPointsApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ}

    @extend_schema(parameters=[io.PointsSummaryQuery], responses=io.PointsSummaryOutput,
                   operation_id="member_points_retrieve")
    def get(self, request, member_id: int):
        query = io.PointsSummaryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        summary = selectors.points_summary(member=self.get_member(member_id),
                                           within_days=query.validated_data["within_days"])
        return Response(io.PointsSummaryOutput(summary).data)


class MemberPointsLedgerApi(PointsApiBase):
    pagination_class = CursorPagination
    required_scopes = {"GET": POINTS_READ}

    @extend_schema(responses=io.PointsEntryOutput(many=True), operation_id="member_points_ledger")
    def get(self, request, member_id: int):
        entries = selectors.ledger_entries(member=self.get_member(member_id))
        paginator = CursorPagination()
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(io.PointsEntryOutput(page, many=True).data)


class PointsEarnApi(PointsApiBase):
    required_scopes = {"POST": POINTS_WRITE}

    @extend_schema(request=io.PointsEarnInput,
                   responses={201: io.PointsTransactionOutput, 200: io.PointsTransactionOutput},
                   operation_id="points_earn")
    @idempotent
    def post(self, request):
        data = io.PointsEarnInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.points_earn(
            actor=self.actor, member=self.get_member(values["member"]), points=values["points"],
            reason=values["reason"], ref=Ref(values["ref_type"], values["ref_id"]),
            idempotency_key=ledger_key(request),
        )  # fmt: skip
        return self.transaction_response(result)


class PointsRedeemApi(PointsApiBase):
    required_scopes = {"POST": POINTS_WRITE}

    @extend_schema(request=io.PointsRedeemInput,
                   responses={201: io.PointsTransactionOutput, 200: io.PointsTransactionOutput},
                   operation_id="points_redeem")
    @idempotent
    def post(self, request):
        data = io.PointsRedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.points_redeem(
            actor=self.actor, member=self.get_member(values["member"]), points=values["points"],
            reason=values["reason"], ref=Ref(values["ref_type"], values["ref_id"]),
            idempotency_key=ledger_key(request),
        )  # fmt: skip
        return self.transaction_response(result)


class PointsAdjustApi(PointsApiBase):
    required_scopes = {"POST": POINTS_ADJUST}

    @extend_schema(request=io.PointsAdjustInput,
                   responses={201: io.PointsTransactionOutput, 200: io.PointsTransactionOutput},
                   operation_id="points_adjust")
    @idempotent
    def post(self, request):
        data = io.PointsAdjustInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.points_adjust(
            actor=self.actor, member=self.get_member(values["member"]), points=values["points"],
            reason=values["reason"], idempotency_key=ledger_key(request),
            ip=request.META.get("REMOTE_ADDR"),
        )  # fmt: skip
        return self.transaction_response(result)


class MemberPointsCheckInApi(PointsApiBase):
    required_scopes = {"POST": POINTS_WRITE}

    @extend_schema(request=io.PointsCheckInInput,
                   responses={201: io.PointsCheckInOutput, 200: io.PointsCheckInOutput},
                   operation_id="member_points_checkin")
    @idempotent
    def post(self, request, member_id: int):
        io.PointsCheckInInput(data=request.data).is_valid(raise_exception=True)
        result = services.points_checkin(actor=self.actor, member=self.get_member(member_id))
        body = io.PointsCheckInOutput({"checkin": result.checkin, "balance": result.balance})
        return Response(body.data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class PointsPolicyApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ, "PATCH": POINTS_MANAGE}

    @extend_schema(responses=io.PointsPolicyOutput, operation_id="points_policy_retrieve")
    def get(self, request):
        return Response(io.PointsPolicyOutput(services.policy_get()).data)

    @extend_schema(request=io.PointsPolicyInput, responses=io.PointsPolicyOutput,
                   operation_id="points_policy_update")
    def patch(self, request):
        data = io.PointsPolicyInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = services.policy_update(actor=self.actor, changes=dict(data.validated_data))
        return Response(io.PointsPolicyOutput(policy).data)


class PointsLiabilityApi(PointsApiBase):
    required_scopes = {"GET": POINTS_READ}

    @extend_schema(responses=io.PointsLiabilityOutput, operation_id="points_liability")
    def get(self, request):
        # A tenant-wide financial figure: not for staff who see only some members.
        if self.actor.guide_id is not None or self.actor.store_id is not None:
            raise PermissionDenied()
        return Response(io.PointsLiabilityOutput(selectors.points_liability()).data)


class PointsBatchApi(PointsApiBase):
    """Up to 500 earns and redemptions in one request, for partners that sync in bulk (a POS
    closing its day, an ERP).  Each operation is applied on its own (each member's in the
    order given): one refused (insufficient points, an unknown member) does not undo the
    others.  Each may carry its own ``key``; retrying the batch with the same keys replays
    what was applied."""

    required_scopes = {"POST": POINTS_WRITE}
    throttle_scope = "bulk"

    @extend_schema(request=io.PointsBatchInput, responses=io.PointsBatchOutput,
                   operation_id="points_batch")
    @idempotent
    def post(self, request):
        data = io.PointsBatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        operations, results = [], []
        checker = io.PointsBatchOperationInput()  # one instance: building one is the cost
        for index, raw in enumerate(data.validated_data["operations"]):
            try:
                operations.append((index, checker.run_validation(raw)))
            except ValidationError as exc:
                results.append({"index": index, "status": "error", "code": "validation_error",
                                "message": _("操作数据有误。"), "errors": exc.detail})
        members = {member.pk: member for member in member_visible(actor=self.actor).filter(
            pk__in={values["member"] for _index, values in operations})}
        expires_at = expiry_for(services.policy_get(), timezone.now())
        # In member order (each member's own operations keep theirs): the batch is one
        # transaction holding each account's lock until it commits, and concurrent batches
        # that take them in the same order wait for each other instead of deadlocking.
        operations.sort(key=lambda item: (item[1]["member"], item[0]))
        results += [self.apply_operation(index, values, members, expires_at)
                    for index, values in operations]
        results.sort(key=lambda result: result["index"])
        counts = Counter(result["status"] for result in results)
        return Response({"results": results, "applied": counts["applied"],
                         "replayed": counts["replayed"], "failed": counts["error"]})

    def apply_operation(self, index: int, values: dict, members: dict, expires_at) -> dict:
        member = members.get(values["member"])
        if member is None:
            return {"index": index, "status": "error", "code": "not_found",
                    "message": _("未找到会员 %(id)s。") % {"id": values["member"]}}
        extra = {"expires_at": expires_at} if values["type"] == "earn" else {}
        service = services.points_earn if values["type"] == "earn" else services.points_redeem
        try:
            result = service(
                actor=self.actor, member=member, points=values["points"],
                reason=values["reason"], ref=Ref(values["ref_type"], values["ref_id"]),
                idempotency_key=f"api:{values['key']}" if values["key"] else None, **extra)
        except ApplicationError as exc:
            return {"index": index, "status": "error", "code": exc.code,
                    "message": str(exc.detail)}
        return {"index": index, "status": "replayed" if result.replayed else "applied",
                "transaction": io.entry_data(result.entry),
                "balance": result.balance}
