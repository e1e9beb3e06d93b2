"""Rate limits of the API, counted in ``API_RATE_LIMIT_STORAGE`` (Redis in production, so every
worker shares the counts) as sliding windows, which cost two counters per key whatever the rate.

- A request made with an API key counts against that key: ``API_RATE_LIMIT_KEY``, or the key's
  own rate in ``API_RATE_LIMIT_KEY_OVERRIDES`` (``<prefix>=<rate>``) for high-volume partners.
  Views with ``throttle_scope = "bulk"`` count against the key's separate
  ``API_RATE_LIMIT_BULK`` allowance, so a partner's bulk sync and its single calls never eat
  into each other.
- Any other request (dashboard sessions, anonymous calls, and every failed try of a key)
  counts against the client IP: ``API_RATE_LIMIT_IP``.  Partners' servers behind one address
  are limited by their keys, never by the address.

Over the limit the API answers 429 with ``Retry-After`` (seconds) and the usual error body.
"""

import math
import time
from functools import cache

from django.conf import settings
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from scrm.models import ApiKey

BULK = "bulk"


@cache
def _limiter(storage_uri: str) -> SlidingWindowCounterRateLimiter:
    return SlidingWindowCounterRateLimiter(storage_from_string(storage_uri))


@cache
def _rate(text: str) -> RateLimitItem:
    return parse(text)


def _hit(rate: str, *identifiers: str) -> float | None:
    """Count one request; ``None`` when it is allowed, else the seconds until it would be."""
    if not settings.API_RATE_LIMIT_ENABLED:
        return None
    limiter, item = _limiter(settings.API_RATE_LIMIT_STORAGE), _rate(rate)
    if limiter.hit(item, "api", *identifiers):
        return None
    reset_at, _remaining = limiter.get_window_stats(item, "api", *identifiers)
    return max(1, math.ceil(reset_at - time.time()))


def _address(request) -> str:
    # Behind a proxy, the proxy sets REMOTE_ADDR from X-Forwarded-For (gunicorn's
    # forwarded_allow_ips, or the proxy's own PROXY protocol), never the client.
    return request.META.get("REMOTE_ADDR") or "-"


def key_rate(api_key: ApiKey, *, bulk: bool) -> str:
    if bulk:
        return settings.API_RATE_LIMIT_BULK
    return settings.API_RATE_LIMIT_KEY_OVERRIDES.get(api_key.prefix, settings.API_RATE_LIMIT_KEY)


class _Throttle(BaseThrottle):
    retry_after: float | None = None

    def wait(self):
        return self.retry_after


class ApiKeyThrottle(_Throttle):
    """Per API key, with a separate allowance for the bulk endpoints."""

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return True
        bulk = getattr(view, "throttle_scope", None) == BULK
        scope = BULK if bulk else "key"
        self.retry_after = _hit(key_rate(request.auth, bulk=bulk), scope, request.auth.prefix)
        return self.retry_after is None


class ClientIpThrottle(_Throttle):
    """Per client IP, for every request that is not made with an API key."""

    def allow_request(self, request, view):
        if isinstance(request.auth, ApiKey):
            return True
        self.retry_after = _hit(settings.API_RATE_LIMIT_IP, "ip", _address(request))
        return self.retry_after is None


def failed_key_count(request) -> None:
    """A wrong API key counts against the client IP; over its limit the answer is 429, so
    keys cannot be guessed at speed."""
    wait = _hit(settings.API_RATE_LIMIT_IP, "ip", _address(request))
    if wait is not None:
        raise exceptions.Throttled(wait)
