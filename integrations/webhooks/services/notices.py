"""Turning off an endpoint that keeps failing, and telling the tenant: an audit entry, the
notice on the webhooks page (the endpoint's ``disabled_at`` and reason) and an e-mail to
the tenant's owners."""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from scrm.audit import audit_write
from scrm.models import Role, StaffMembership

logger = logging.getLogger(__name__)


def owner_emails(tenant_id: int) -> list[str]:
    return sorted({email for email in StaffMembership.objects.filter(
        tenant_id=tenant_id, role=Role.OWNER, is_active=True, user__is_active=True,
    ).values_list("user__email", flat=True) if email})


def endpoint_disable(*, endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Disable ``endpoint`` for sustained failures; False when it already was (the notice
    goes out once)."""
    reason = _("连续失败 %(count)s 次，自 %(since)s 起") % {
        "count": endpoint.consecutive_failures,
        "since": endpoint.failing_since.isoformat(timespec="minutes")
        if endpoint.failing_since else "",
    }
    disabled = WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:255])
    if not disabled:
        return False
    WebhookDelivery.objects.unscoped().filter(
        endpoint_id=endpoint.pk, status__in=[WebhookDelivery.Status.PENDING,
                                             WebhookDelivery.Status.FAILED],
    ).update(status=WebhookDelivery.Status.DEAD, next_attempt_at=None, error="endpoint disabled")
    audit_write(tenant_id=endpoint.tenant_id, actor_label="system", action="webhook.disabled",
                target_type="webhookendpoint", target_id=endpoint.pk,
                data={"url": endpoint.url, "reason": reason,
                      "consecutive_failures": endpoint.consecutive_failures})
    recipients = owner_emails(endpoint.tenant_id)
    if recipients:
        transaction.on_commit(lambda: _mail(endpoint, reason, recipients))
    return True


def _mail(endpoint: WebhookEndpoint, reason: str, recipients: list[str]) -> None:
    page = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("web:webhooks")
    subject = _("Webhook 端点“%(name)s”已自动停用") % {"name": endpoint.name}
    body = _(
        "Webhook 端点“%(name)s”（%(url)s）%(reason)s，已自动停用，不再推送。\n"
        "修复接收方后，请在 %(page)s 重新启用，并重发停用期间失败的推送。"
    ) % {"name": endpoint.name, "url": endpoint.url, "reason": reason, "page": page}
    try:
        send_mail(subject, body, None, recipients)
    except OSError:  # the notice on the page and the audit entry stand without the mail
        logger.exception("webhook disable notice mail to %s failed", recipients)
