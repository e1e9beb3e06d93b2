"""``Idempotency-Key`` on POST: the same key with the same body replays the first answer; the
same key with another body is refused.  The key is claimed inside the request's transaction,
so a concurrent retry waits for the first to finish and then replays it, and a request that
fails leaves no claim behind."""

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from scrm.api.errors import ApplicationError
from scrm.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def _request_hash(request) -> str:
    body = json.dumps(request.data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(key: str, request, request_hash: str) -> IdempotencyRecord | None:
    """Claim ``key`` for this request; return the earlier record if someone else holds it."""
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                key=key,
                method=request.method,
                path=request.path[:255],
                request_hash=request_hash,
                status_code=0,
                response_body={},
            )
    except IntegrityError:
        return IdempotencyRecord.objects.get(key=key)
    return None


def idempotent(handler):
    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise ApplicationError(
                _("Idempotency-Key 过长（最多 255 个字符）。"), code="invalid_idempotency_key"
            )
        request_hash = _request_hash(request)
        earlier = _claim(key, request, request_hash)
        if earlier is not None:
            if earlier.request_hash != request_hash:
                raise ApplicationError(
                    _("该 Idempotency-Key 已用于另一个不同的请求。"),
                    code="idempotency_key_reused",
                    status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            return Response(
                earlier.response_body,
                status=earlier.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        response = handler(view, request, *args, **kwargs)
        if 200 <= response.status_code < 300:
            IdempotencyRecord.objects.filter(key=key).update(
                status_code=response.status_code,
                response_body=response.data,
            )
        else:
            IdempotencyRecord.objects.filter(key=key).delete()
        return response

    return wrapper
