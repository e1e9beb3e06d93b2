import hmac
import time
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from scrm.access import Actor
from scrm.api.throttling import failed_key_count
from scrm.models import ApiKey
from scrm.selectors import api_key_active_get

LAST_USED_RESOLUTION = timedelta(minutes=1)
# When this process last stamped each key (monotonic seconds), so that it writes at most
# once per resolution instead of asking the database on every request.
_stamped: dict[str, float] = {}


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer sk_<prefix>_<secret>``; the request then acts for its tenant."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        secret = header[len(self.keyword) + 1 :].strip()
        parts = secret.split("_")
        if len(parts) < 3 or parts[0] != "sk":
            failed_key_count(request)
            raise exceptions.AuthenticationFailed(_("API 密钥格式不正确。"))
        api_key = api_key_active_get(prefix=parts[1])
        if api_key is None or not hmac.compare_digest(
            api_key.key_hash, ApiKey.hash_secret(secret)
        ):
            failed_key_count(request)
            raise exceptions.AuthenticationFailed(_("API 密钥无效或已吊销。"))
        _last_used_stamp(api_key)
        request.actor = Actor.for_api_key(api_key)
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


def _last_used_stamp(api_key: ApiKey) -> None:
    # Only when the recorded time is a minute old: the update runs inside the request's
    # transaction, and a row it changes stays locked until commit, which would queue every
    # concurrent request made with the same key behind this one.
    moment = time.monotonic()
    if moment - _stamped.get(api_key.prefix, -1e9) < LAST_USED_RESOLUTION.total_seconds():
        return
    _stamped[api_key.prefix] = moment
    now = timezone.now()
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=api_key.pk,
    ).update(last_used_at=now)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Tenant API key"}
