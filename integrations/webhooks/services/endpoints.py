"""Endpoints: create, change, rotate the secret, delete; the types a tenant subscribes to."""

import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services.sender import is_private_host
from scrm import crypto, events
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record
from scrm.tenancy import tenant_scope

EDITABLE = ("name", "url", "event_types", "is_active")


def secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return crypto.decrypt(endpoint.secret_encrypted)


def endpoint_types_subscribed(tenant_id: int) -> frozenset[str]:
    """Every type some endpoint of the tenant subscribes to, active or not: a disabled
    endpoint still gets its deliveries logged (as dead), so a replay after re-enabling
    sends what it missed."""
    with tenant_scope(tenant_id):
        lists = WebhookEndpoint.objects.values_list("event_types", flat=True)
        return frozenset(t for types in lists for t in types)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code="validation_error", fields={field: [message]})


def url_check(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", _("地址必须以 http:// 或 https:// 开头。"))
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS and is_private_host(parts.hostname):
        raise _invalid("url", _("不能推送到本机或内网地址。"))
    return url


def _url_unused(url: str, *, other_than: int | None = None) -> str:
    """One endpoint per URL: a retried create answers 409 instead of adding a second."""
    if WebhookEndpoint.objects.filter(url=url).exclude(pk=other_than).exists():
        raise Conflict(_("该地址已有端点。"), code="endpoint_exists",
                       fields={"url": [_("该地址已有端点。")]})
    return url


def types_check(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - set(events.EVENT_TYPES))
    if unknown:
        message = _("未知的事件类型：%(types)s") % {"types": ", ".join(unknown)}
        raise _invalid("event_types", message)
    if not types:
        raise _invalid("event_types", _("至少订阅一种事件。"))
    return sorted(set(types))


@transaction.atomic
def endpoint_create(*, actor: Actor, name: str, url: str,
                    event_types: list[str]) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is returned only here."""
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        tenant_id=actor.tenant.pk, name=name, url=_url_unused(url_check(url)),
        event_types=types_check(event_types), secret_encrypted=crypto.encrypt(secret),
        created_by=actor.label,
    )
    audit_record(actor=actor, action="webhook.created", target=endpoint,
                 data={"url": endpoint.url, "event_types": endpoint.event_types})
    events.subscriptions_changed(tenant_id=actor.tenant.pk)
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint,
                    changes: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint.  Turning it back on clears the failure count and the notice."""
    changes = {key: value for key, value in changes.items() if key in EDITABLE}
    if "url" in changes:
        changes["url"] = _url_unused(url_check(changes["url"]), other_than=endpoint.pk)
    if "event_types" in changes:
        changes["event_types"] = types_check(changes["event_types"])
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    enabling = changes.get("is_active") is True and not endpoint.is_active
    for key, value in changes.items():
        setattr(endpoint, key, value)
    if enabling:
        endpoint.disabled_at, endpoint.disabled_reason = None, ""
        endpoint.consecutive_failures, endpoint.failing_since = 0, None
    elif changes.get("is_active") is False and endpoint.disabled_at is None:
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = _("手动停用")
    endpoint.save()
    if changes.get("is_active") is False:
        deliveries_abandon(endpoint=endpoint, error="endpoint disabled")
    audit_record(actor=actor, action="webhook.updated", target=endpoint,
                 data=dict(changes))
    events.subscriptions_changed(tenant_id=endpoint.tenant_id)
    return endpoint


@transaction.atomic
def endpoint_secret_rotate(*, actor: Actor, endpoint: WebhookEndpoint) -> str:
    """A new secret, in force for the next request; returned only here."""
    secret = secret_generate()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        secret_encrypted=crypto.encrypt(secret), updated_at=timezone.now())
    audit_record(actor=actor, action="webhook.secret_rotated", target=endpoint)
    return secret


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    audit_record(actor=actor, action="webhook.deleted", target=endpoint,
                 data={"url": endpoint.url})
    WebhookDelivery.objects.filter(endpoint=endpoint).delete()
    endpoint.delete()
    events.subscriptions_changed(tenant_id=endpoint.tenant_id)


def deliveries_abandon(*, endpoint: WebhookEndpoint, error: str) -> int:
    """The endpoint's unfinished deliveries are given up (``dead``); a replay resends them."""
    return WebhookDelivery.objects.filter(
        endpoint=endpoint, status__in=[WebhookDelivery.Status.PENDING,
                                       WebhookDelivery.Status.FAILED],
    ).update(status=WebhookDelivery.Status.DEAD, next_attempt_at=None, error=error)
