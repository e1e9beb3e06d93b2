"""Every API error as JSON: a stable ``code``, a ``message`` in the request's language
(zh-Hans by default, English with ``Accept-Language: en``) and, for bad input, field errors."""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(exceptions.APIException):
    """A business rule said no.  Services raise it; the API answers with its code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        fields: dict | None = None,
    ) -> None:
        super().__init__(detail=message, code=code or self.default_code)
        if status_code:
            self.status_code = status_code
        self.code = code or self.default_code
        self.fields = fields or {}


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.ValidationError: "validation_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def _messages(detail) -> dict | list:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(value) for value in detail]
    return str(detail)


def _summary(detail) -> str:
    if isinstance(detail, dict):
        return _summary(next(iter(detail.values()), ""))
    if isinstance(detail, list):
        return _summary(detail[0]) if detail else ""
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"code": "payload_too_large", "message": _("请求体过大。")},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("未找到。"))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body: dict = {"code": CODES.get(type(exc), getattr(exc, "code", "error"))}
    if isinstance(exc, ApplicationError):
        body["message"] = str(exc.detail)
        if exc.fields:
            body["errors"] = exc.fields
    elif isinstance(exc, exceptions.Throttled):
        body["message"] = _("请求过于频繁，请在 %(seconds)s 秒后重试。") % {
            "seconds": exc.wait or 1}
    elif isinstance(exc, exceptions.ValidationError):
        body["message"] = _("请求数据有误：%(detail)s") % {"detail": _summary(exc.detail)}
        body["errors"] = _messages(exc.detail)
    else:
        body["message"] = _summary(exc.detail)
    response.data = body
    return response


def page_not_found(request, exception):
    """Django's 404 for a URL no route matches (``handler404``): under ``/api/`` the JSON
    every API error has, elsewhere the site's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": _("未找到。")}, status=404)
    return defaults.page_not_found(request, exception)
