from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("-id")


def delivery_list(*, filters: dict[str, Any] | None = None) -> QuerySet[WebhookDelivery]:
    """The tenant's deliveries, newest first, narrowed by ``filters``: endpoint, status,
    event_type, event_id (the event's UUID), since, until."""
    filters = filters or {}
    queryset = WebhookDelivery.objects.select_related("event").order_by("-id")
    for name in ("endpoint", "status", "event_type"):
        if filters.get(name) not in (None, ""):
            queryset = queryset.filter(**{f"{name}": filters[name]})
    if filters.get("event_id"):
        queryset = queryset.filter(event__event_id=filters["event_id"])
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    return queryset
