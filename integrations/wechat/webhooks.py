"""The callback URLs WeChat and WeCom post events to: one per OA (by appid) and one per
WeCom corp (by corpid).

Each request is checked (signature, freshness, size), decrypted and parsed, recorded once
(a retry or replay of the same event is answered without doing anything twice) and handed to
Celery; the answer goes back at once, well inside WeChat's 5 seconds.  Forged, stale,
malformed or oversized requests answer 4xx, are logged, and change nothing."""

import logging
import time

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.models import OAApp, WeComCorp
from integrations.services import callbacks
from integrations.services.connections import secret_of
from integrations.wechat.client import (
    CallbackRejected,
    oa_callback_message,
    oa_callback_verify,
    wecom_callback_echo,
    wecom_callback_message,
)
from scrm.tenancy import tenant_scope, unscoped_access

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_SKEW = 300  # seconds between the callback's timestamp and our clock


def _refuse(status: int, why: str, request: HttpRequest) -> HttpResponse:
    logger.warning("callback refused (%s): %s %s from %s", why, request.method,
                   request.path, request.META.get("REMOTE_ADDR"))
    return HttpResponse(why, status=status, content_type="text/plain")


def _fresh(timestamp: str) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= MAX_SKEW
    except ValueError:
        return False


def _find(model, **lookup):
    """The connection a callback is for, before any tenant is known."""
    with unscoped_access("route a WeChat callback to its tenant"):
        return model.objects.unscoped().filter(is_active=True, **lookup).first()


def _checks(request: HttpRequest, connection) -> HttpResponse | None:
    if connection is None:
        return _refuse(404, "unknown account", request)
    if not connection.token_encrypted:
        return _refuse(403, "callbacks not configured", request)
    if len(request.body) > MAX_BODY:
        return _refuse(413, "too large", request)
    if not _fresh(request.GET.get("timestamp", "")):
        return _refuse(403, "stale or missing timestamp", request)
    return None


@csrf_exempt
def oa_callback(request: HttpRequest, appid: str) -> HttpResponse:
    app = _find(OAApp, appid=appid)
    refused = _checks(request, app)
    if refused:
        return refused
    query = request.GET
    token = secret_of(app, "token_encrypted")
    try:
        oa_callback_verify(token=token, signature=query.get("signature", ""),
                           timestamp=query["timestamp"], nonce=query.get("nonce", ""))
        if request.method == "GET":  # URL verification: echo echostr back unchanged
            return HttpResponse(query.get("echostr", ""), content_type="text/plain")
        if request.method != "POST":
            return _refuse(405, "method not allowed", request)
        encrypted = query.get("encrypt_type") == "aes"
        message = oa_callback_message(
            body=request.body, token=token, aes_key=secret_of(app, "aes_key_encrypted"),
            appid=app.appid, encrypted=encrypted, msg_signature=query.get("msg_signature", ""),
            timestamp=query["timestamp"], nonce=query.get("nonce", ""))
    except CallbackRejected as exc:
        return _refuse(403 if "signature" in str(exc).lower() else 400, str(exc), request)
    with tenant_scope(app.tenant_id):
        reply = callbacks.oa_event_receive(app=app, message=message, encrypted=encrypted,
                                           nonce=query.get("nonce", ""),
                                           timestamp=query["timestamp"])
    return HttpResponse(reply or "success", content_type="text/xml" if reply else "text/plain")


@csrf_exempt
def wecom_callback(request: HttpRequest, corpid: str) -> HttpResponse:
    corp = _find(WeComCorp, corpid=corpid)
    refused = _checks(request, corp)
    if refused:
        return refused
    query = request.GET
    common = {"token": secret_of(corp, "token_encrypted"),
              "aes_key": secret_of(corp, "aes_key_encrypted"), "corpid": corp.corpid,
              "msg_signature": query.get("msg_signature", ""), "timestamp": query["timestamp"],
              "nonce": query.get("nonce", "")}
    try:
        if request.method == "GET":
            return HttpResponse(wecom_callback_echo(echostr=query.get("echostr", ""), **common),
                                content_type="text/plain")
        if request.method != "POST":
            return _refuse(405, "method not allowed", request)
        message = wecom_callback_message(body=request.body, **common)
    except CallbackRejected as exc:
        return _refuse(403 if "signature" in str(exc).lower() else 400, str(exc), request)
    with tenant_scope(corp.tenant_id):
        callbacks.wecom_event_receive(corp=corp, message=message)
    return HttpResponse("success", content_type="text/plain")
