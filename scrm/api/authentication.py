from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from scrm.access import Actor
from scrm.models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


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
            raise exceptions.AuthenticationFailed(_("API 密钥格式不正确。"))
        api_key = (
            ApiKey.objects.select_related("tenant")
            .filter(prefix=parts[1], revoked_at__isnull=True, tenant__is_active=True)
            .first()
        )
        if api_key is None or api_key.key_hash != ApiKey.hash_secret(secret):
            raise exceptions.AuthenticationFailed(_("API 密钥无效或已吊销。"))
        # Only when the recorded time is a minute old: the update runs inside the request's
        # transaction, and a row it changes stays locked until commit, which would queue
        # every concurrent request made with the same key behind this one.
        now = timezone.now()
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
            pk=api_key.pk,
        ).update(last_used_at=now)
        request.actor = Actor.for_api_key(api_key)
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Tenant API key"}
