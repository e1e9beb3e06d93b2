"""Outbound messages: OA template messages (coupon issued, points expiring, tier upgraded...)
and WeCom mass-message tasks (企业群发) for guides.

A template message has a key (``client_msg_id``, derived by the caller from what it is
about): sending it again, after a crash or a retry, sends nothing twice, here or on WeChat's
side.  A mass message respects each customer's receive limit (WeCom allows a customer only a
few per period): customers at their limit are left out and recorded as such."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.models import (
    ContactRelation,
    Follower,
    MassMessage,
    MassMessageRecipient,
    OAApp,
    TemplateMessage,
    WeComCorp,
)
from integrations.services.connections import oa_api, wecom_api
from integrations.services.followers import with_backoff
from integrations.wechat.client import WeChatApiError
from members.models import Member
from members.services import timeline_add
from scrm.access import Actor
from scrm.api.errors import ApplicationError

# Errors that say this member cannot receive it (not following, blocked, wrong openid).
UNREACHABLE = frozenset({40003, 43004, 43101})


def template_send(*, app: OAApp, member: Member, template_id: str, data: dict[str, Any],
                  key: str, url: str = "") -> TemplateMessage:
    """Send (once per ``key``) a template message to the member's openid on ``app``."""
    message = _template_claim(app=app, member=member, template_id=template_id, data=data,
                              key=key, url=url)
    if message.status != TemplateMessage.Status.PENDING:
        return message
    try:
        msgid = with_backoff(lambda: oa_api(app).template_send(
            openid=message.openid, template_id=template_id, data=data, url=url,
            client_msg_id=key), retries=3)
    except WeChatApiError as exc:
        if exc.errcode in UNREACHABLE:
            return _template_mark(message, TemplateMessage.Status.SKIPPED, str(exc))
        if exc.is_retryable:
            raise  # the caller's task retries; the same key sends once
        return _template_mark(message, TemplateMessage.Status.FAILED, str(exc))
    TemplateMessage.objects.filter(pk=message.pk).update(
        status=TemplateMessage.Status.SENT, msgid=msgid, sent_at=timezone.now(), error="")
    message.refresh_from_db()
    timeline_add(member=member, kind="oa.template_sent", actor="system",
                 data={"template_id": template_id, "key": key})
    return message


def _template_claim(*, app: OAApp, member: Member, template_id: str, data: dict, key: str,
                    url: str) -> TemplateMessage:
    existing = TemplateMessage.objects.filter(app=app, client_msg_id=key[:64]).first()
    if existing is not None:
        return existing
    follower = Follower.objects.filter(app=app, member=member, is_subscribed=True).first()
    message = TemplateMessage(tenant_id=app.tenant_id, app=app, member=member,
                              openid=follower.openid if follower else "",
                              template_id=template_id, data=data, url=url,
                              client_msg_id=key[:64])
    if follower is None:
        message.status, message.error = TemplateMessage.Status.SKIPPED, _("未关注公众号")
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:  # a concurrent send of the same key won
        return TemplateMessage.objects.get(app=app, client_msg_id=key[:64])
    return message


def _template_mark(message: TemplateMessage, status: str, error: str) -> TemplateMessage:
    TemplateMessage.objects.filter(pk=message.pk).update(status=status, error=error[:255])
    message.refresh_from_db()
    return message


# WeCom mass messages


def _period_start() -> datetime:
    now = timezone.localtime()
    if settings.WECOM_MASS_PERIOD == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def customers_at_limit(*, external_userids: list[str]) -> set[str]:
    """Customers who already received ``WECOM_MASS_LIMIT`` mass messages this period."""
    from django.db.models import Count

    rows = (MassMessageRecipient.objects
            .filter(external_userid__in=external_userids, sent_at__gte=_period_start(),
                    status=MassMessageRecipient.Status.SENT)
            .values("external_userid").annotate(n=Count("pk"))
            .filter(n__gte=settings.WECOM_MASS_LIMIT))
    return {row["external_userid"] for row in rows}


def mass_message_create(*, actor: Actor, corp: WeComCorp, sender_userid: str,
                        member_ids: list[int], text: str, key: str,
                        attachments: list[dict] = ()) -> MassMessage:
    """A mass-message task for one guide to their customers among ``member_ids``: customers
    over their receive limit are left out (recorded as skipped).  Once per ``key``."""
    if not text.strip() and not attachments:
        raise ApplicationError(_("请填写群发内容。"), code="content_required")
    existing = MassMessage.objects.filter(corp=corp, key=key).first()
    if existing is not None:
        return existing
    targets = dict(ContactRelation.objects.filter(
        contact__corp=corp, user__userid=sender_userid, member_id__in=member_ids,
        status=ContactRelation.Status.ACTIVE).values_list("contact__external_userid",
                                                          "member_id"))
    limited = customers_at_limit(external_userids=list(targets))
    allowed = [e for e in targets if e not in limited][:10_000]
    with transaction.atomic():
        message = MassMessage.objects.create(tenant_id=corp.tenant_id, corp=corp,
                                             sender_userid=sender_userid, text=text,
                                             attachments=list(attachments), key=key)
        MassMessageRecipient.objects.bulk_create([
            MassMessageRecipient(
                tenant_id=corp.tenant_id, message=message, member_id=member_id,
                external_userid=external,
                status=(MassMessageRecipient.Status.SKIPPED if external in limited
                        else MassMessageRecipient.Status.UNSENT))
            for external, member_id in targets.items()])
    if allowed:
        try:
            result = with_backoff(lambda: wecom_api(corp).msg_template_add(
                sender=sender_userid, external_userids=allowed, text=text,
                attachments=list(attachments)), retries=3)
        except WeChatApiError as exc:
            raise ApplicationError(str(exc), code="wechat_error", status_code=502) from exc
        MassMessage.objects.filter(pk=message.pk).update(msgid=result.get("msgid", ""))
        message.refresh_from_db()
    return message


def mass_message_results(*, message: MassMessage) -> dict[str, int]:
    """Fetch per-customer results (sent, not a contact, limited) from WeCom."""
    if not message.msgid:
        return {}
    api, cursor, counts = wecom_api(message.corp), "", {}
    while True:
        page = with_backoff(lambda c=cursor: api.msg_send_results(
            msgid=message.msgid, userid=message.sender_userid, cursor=c))
        for row in page.get("send_list", []):
            status = int(row.get("status", 0))
            sent_at = datetime.fromtimestamp(int(row["send_time"]), tz=UTC) \
                if row.get("send_time") else None
            MassMessageRecipient.objects.filter(
                message=message, external_userid=row.get("external_userid", "")).exclude(
                status=MassMessageRecipient.Status.SKIPPED).update(status=status, sent_at=sent_at)
            counts[status] = counts.get(status, 0) + 1
        cursor = page.get("next_cursor", "")
        if not cursor:
            break
    MassMessage.objects.filter(pk=message.pk).update(results_checked_at=timezone.now())
    return {MassMessageRecipient.Status(s).label: n for s, n in counts.items()}

