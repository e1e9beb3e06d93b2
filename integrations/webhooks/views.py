"""The webhooks page under 设置: endpoints (with the notice of any that was disabled), the
recent deliveries with their response codes, creating, pausing, re-enabling, deleting and
replaying."""

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from integrations.webhooks import selectors
from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services import endpoints as services
from integrations.webhooks.services.replay import deliveries_replay_failed, delivery_replay
from scrm import access
from scrm.api.errors import ApplicationError
from scrm.events import EVENT_TYPES
from scrm.web import error_text, page

DELIVERIES_SHOWN = 50


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404
    return endpoint


@page(access.WEBHOOKS_READ)
def webhook_list(request: HttpRequest) -> HttpResponse:
    secret = ""
    if request.method == "POST" and request.actor.can(access.WEBHOOKS_MANAGE):
        try:
            _created, secret = services.endpoint_create(
                actor=request.actor, name=request.POST.get("name", "").strip()[:64] or _("未命名"),
                url=request.POST.get("url", "").strip(),
                event_types=request.POST.getlist("event_types"))
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    filters = {key: request.GET[key] for key in ("endpoint", "status")
               if request.GET.get(key, "").isascii() and request.GET.get(key)}
    if "endpoint" in filters and not filters["endpoint"].isdigit():
        filters.pop("endpoint")
    endpoints = list(selectors.endpoint_list())
    return render(request, "integrations/webhooks.html", {
        "endpoints": endpoints, "disabled": [e for e in endpoints if e.disabled_at],
        "deliveries": selectors.delivery_list(filters=filters)[:DELIVERIES_SHOWN],
        "statuses": WebhookDelivery.Status.choices, "filters": filters,
        "event_types": list(EVENT_TYPES.items()), "secret": secret,
        "can_manage": request.actor.can(access.WEBHOOKS_MANAGE),
        "replay_since": (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })


@require_POST
@page(access.WEBHOOKS_MANAGE)
def webhook_toggle(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    services.endpoint_update(actor=request.actor, endpoint=endpoint,
                             changes={"is_active": not endpoint.is_active})
    messages.success(request, _("已停用。") if endpoint.is_active else _("已启用。"))
    return redirect("web:webhooks")


@require_POST
@page(access.WEBHOOKS_MANAGE)
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    services.endpoint_delete(actor=request.actor, endpoint=_endpoint(endpoint_id))
    messages.success(request, _("已删除。"))
    return redirect("web:webhooks")


@require_POST
@page(access.WEBHOOKS_MANAGE)
def webhook_replay(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Replay every failed delivery of the endpoint since the given time."""
    endpoint = _endpoint(endpoint_id)
    try:
        since = timezone.make_aware(timezone.datetime.fromisoformat(request.POST["since"]))
        queued = deliveries_replay_failed(actor=request.actor, endpoint=endpoint, since=since)
    except (KeyError, ValueError):
        messages.error(request, _("请填写有效的起始时间。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("已重发 %(count)s 条。") % {"count": queued})
    return redirect("web:webhooks")


@require_POST
@page(access.WEBHOOKS_MANAGE)
def webhook_delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = (WebhookDelivery.objects.select_related("endpoint")
                .filter(pk=delivery_id).first())
    if delivery is None:
        raise Http404
    try:
        delivery_replay(actor=request.actor, delivery=delivery)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("已加入重发队列。"))
    return redirect("web:webhooks")
