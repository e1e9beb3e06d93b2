"""Callback events: recorded once, then processed by a Celery task.

WeChat retries a callback it got no answer to (3 times, same CreateTime); replays carry an
old payload.  Each event has a de-duplication key (MP: sender + CreateTime + event, or
MsgId; WeCom: CreateTime + the event's ids), unique per tenant: a repeat is recognised and
answered without being processed again."""

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import CallbackEvent, OAApp, WeComCorp
from integrations.services.connections import secret_of

logger = logging.getLogger(__name__)

WECOM_KEY_FIELDS = ("Event", "ChangeType", "UserID", "ExternalUserID", "ChatId", "Id",
                    "UpdateDetail", "TagType")


def _record(*, source: str, account: str, key: str, event: str,
            payload: dict[str, Any]) -> CallbackEvent | None:
    """The new event, or None for a repeat."""
    try:
        with transaction.atomic():
            return CallbackEvent.objects.create(source=source, account=account,
                                                dedupe_key=key[:255], event=event[:64],
                                                payload=payload)
    except IntegrityError:
        logger.info("callback repeated: %s %s", source, key)
        return None


def _enqueue(event: CallbackEvent) -> None:
    from integrations.tasks import callback_process_task

    tenant_id, event_id = event.tenant_id, event.pk
    transaction.on_commit(lambda: callback_process_task.delay(tenant_id, event_id))


def oa_event_key(message: dict[str, Any]) -> str:
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    return ":".join(str(message.get(name, "")) for name in ("FromUserName", "CreateTime",
                                                            "Event"))


def oa_event_receive(*, app: OAApp, message: dict[str, Any], encrypted: bool, nonce: str,
                     timestamp: str) -> str:
    """Record an OA event for processing; returns the passive reply (XML), if any: a
    channel QR code's welcome message on a subscribe or scan."""
    event = (message.get("Event") or message.get("MsgType") or "").strip()
    recorded = _record(source=CallbackEvent.Source.OA, account=app.appid,
                       key=oa_event_key(message), event=event, payload=message)
    if recorded is None:
        return ""
    _enqueue(recorded)
    return _welcome_reply(app=app, message=message, encrypted=encrypted, nonce=nonce,
                          timestamp=timestamp)


def _welcome_reply(*, app: OAApp, message: dict[str, Any], encrypted: bool, nonce: str,
                   timestamp: str) -> str:
    from integrations.services.channels import channel_code_for_event
    from integrations.wechat.client import oa_reply_text

    code = channel_code_for_event(app=app, message=message)
    if code is None or not code.welcome_text:
        return ""
    return oa_reply_text(to_openid=message["FromUserName"],
                         from_original_id=message.get("ToUserName", ""),
                         text=code.welcome_text, token=secret_of(app, "token_encrypted"),
                         aes_key=secret_of(app, "aes_key_encrypted"), appid=app.appid,
                         encrypted=encrypted, nonce=nonce, timestamp=timestamp)


def wecom_event_key(message: dict[str, Any]) -> str:
    return ":".join([str(message.get("CreateTime", ""))]
                    + [str(message.get(name, "")) for name in WECOM_KEY_FIELDS])


def wecom_event_receive(*, corp: WeComCorp, message: dict[str, Any]) -> None:
    event = f"{message.get('Event', '')}/{message.get('ChangeType', '')}"
    recorded = _record(source=CallbackEvent.Source.WECOM, account=corp.corpid,
                       key=wecom_event_key(message), event=event, payload=message)
    if recorded is not None:
        _enqueue(recorded)


def event_time(message: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(message.get("CreateTime")), tz=UTC)
    except (TypeError, ValueError):
        return timezone.now()


def callback_process(*, event: CallbackEvent) -> None:
    """Do what the event says (in the task), and record the outcome on the event."""
    from integrations.services import dispatch

    if event.status in (CallbackEvent.Status.PROCESSED, CallbackEvent.Status.IGNORED):
        return
    handled = dispatch.event_handle(event=event)
    CallbackEvent.objects.filter(pk=event.pk).update(
        status=CallbackEvent.Status.PROCESSED if handled else CallbackEvent.Status.IGNORED,
        processed_at=timezone.now(), error="")


def callback_failed(*, event_id: int, error: str) -> None:
    CallbackEvent.objects.filter(pk=event_id).update(status=CallbackEvent.Status.FAILED,
                                                     error=error[:2000],
                                                     processed_at=timezone.now())
