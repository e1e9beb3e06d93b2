"""What a campaign or an automation does to a group of members, each action idempotent on a
key derived from the run (or firing) and the member, so a chunk run twice does nothing twice:

- ``coupon`` {"template": code}: a coupon each (bulk issue);
- ``points`` {"points": n, "reason": "..."}: points each (ledger key per member);
- ``tag`` {"tag": id}: the tag (bulk);
- ``oa_template`` {"appid", "template_id", "data", "url"?} and ``wecom_mass`` {"corpid",
  "text"}: messages through the channels higher apps register; they are queued (a task per
  chunk, after commit) rather than sent inside the chunk's transaction.
"""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import ActionKind
from campaigns.services.channels import channel_get
from members.models import Member
from points.services import Ref, points_earn
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from tags.models import MemberTag, Tag
from tags.services.tagging import tag_apply_chunk

MESSAGE_KINDS = frozenset({ActionKind.OA_TEMPLATE, ActionKind.WECOM_MASS})


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_action", fields={"actions": [message]})


def _coupon_template(code: Any):
    from campaigns.coupons.models import CouponTemplate

    template = CouponTemplate.objects.filter(code=code).first() if isinstance(code, str) \
        else None
    if template is None:
        raise _invalid(_("优惠券模板 %(code)s 不存在。") % {"code": code})
    return template


def action_validate(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The action's params, checked; a clear error naming what is wrong."""
    if kind == ActionKind.COUPON:
        _coupon_template(params.get("template"))
    elif kind == ActionKind.POINTS:
        points = params.get("points")
        if not isinstance(points, int) or isinstance(points, bool) or not 0 < points <= 10**6:
            raise _invalid(_("送积分需要 1 到 1000000 之间的积分数。"))
        params = {**params, "reason": str(params.get("reason") or _("活动赠送"))[:255]}
    elif kind == ActionKind.TAG:
        tag = Tag.objects.filter(pk=params.get("tag")).first() if isinstance(
            params.get("tag"), int) else None
        if tag is None:
            raise _invalid(_("标签不存在。"))
    elif kind in MESSAGE_KINDS:
        channel = channel_get(kind)
        if channel is None:
            raise _invalid(_("消息渠道 %(kind)s 未接入。") % {"kind": kind})
        if channel.validate:
            try:
                channel.validate(params)
            except ValueError as exc:
                raise _invalid(str(exc)) from exc
    else:
        raise _invalid(_("未知动作：%(kind)s") % {"kind": kind})
    return params


def action_apply(*, actor: Actor, kind: str, params: dict[str, Any], members: list[Member],
                 key_prefix: str, ref: Ref) -> dict[int, str]:
    """Do ``kind`` for ``members`` in the caller's transaction; member id → outcome."""
    if not members:
        return {}
    if kind == ActionKind.COUPON:
        from campaigns.coupons.services import coupons_issue_bulk

        coupons_issue_bulk(actor=actor, template=_coupon_template(params["template"]),
                           member_ids=[m.pk for m in members], key_prefix=key_prefix,
                           source="campaign" if ref.type == "campaign" else "automation",
                           ref=ref.id)
        return dict.fromkeys((m.pk for m in members), "coupon")
    if kind == ActionKind.POINTS:
        for member in members:
            points_earn(actor=actor, member=member, points=params["points"],
                        reason=params["reason"], ref=ref,
                        idempotency_key=f"{key_prefix}:{member.pk}")
        return dict.fromkeys((m.pk for m in members), "points")
    if kind == ActionKind.TAG:
        tag_apply_chunk(tag=Tag.objects.get(pk=params["tag"]), action="add",
                        member_nos=[m.member_no for m in members], actor=actor.label,
                        source=MemberTag.Source.SYSTEM)
        return dict.fromkeys((m.pk for m in members), "tagged")
    _messages_queue(actor=actor, kind=kind, params=params,
                    member_ids=[m.pk for m in members], key_prefix=key_prefix)
    return dict.fromkeys((m.pk for m in members), "queued")


def _messages_queue(*, actor: Actor, kind: str, params: dict, member_ids: list[int],
                    key_prefix: str) -> None:
    from campaigns.tasks import messages_send_task

    tenant_id = actor.tenant.pk
    transaction.on_commit(lambda: messages_send_task.delay(tenant_id, kind, params, member_ids,
                                                           key_prefix))


def messages_send(*, kind: str, params: dict[str, Any], member_ids: list[int],
                  key_prefix: str) -> dict[int, str]:
    """Send (in the task) through the channel; a retried task sends nothing twice."""
    channel = channel_get(kind)
    if channel is None:
        return dict.fromkeys(member_ids, "no_channel")
    members = list(Member.objects.filter(pk__in=member_ids, status=Member.Status.ACTIVE))
    if channel.send_many is not None:
        return channel.send_many(members, params, key_prefix)
    return {member.pk: channel.send(member, params, f"{key_prefix}:{member.pk}")
            for member in members}
