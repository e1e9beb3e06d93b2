"""Channel codes (渠道活码): made per channel, store, guide or campaign, as an OA parametric QR
code (its scene) or a WeCom contact way (its state).  A scan or add records the event, the
member's first touch (when this is their first), the code's tags, the guide it assigns, and
the welcome message (OA: a passive reply; WeCom: ``send_welcome_msg``)."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.models import ChannelCode, ChannelEvent, Follower, OAApp, WeComCorp
from integrations.models.wecom import ContactRelation
from integrations.services.connections import oa_api, wecom_api
from integrations.wechat.client import WeChatApiError
from members.models import Member
from members.services import timeline_add
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.models import StaffMembership, Store
from tags.models import MemberTag, Tag
from tags.services.tagging import tag_apply_chunk

TEMPORARY_MAX_SECONDS = 30 * 24 * 3600


def _scene() -> str:
    return f"c{secrets.token_hex(6)}"  # short: WeCom's state takes 30 characters


def _check_tags(tag_ids: list[int]) -> list[int]:
    tag_ids = sorted(set(tag_ids))
    found = set(Tag.objects.filter(pk__in=tag_ids).values_list("pk", flat=True))
    missing = [tag_id for tag_id in tag_ids if tag_id not in found]
    if missing:
        raise ApplicationError(_("标签不存在：%(ids)s") % {"ids": missing}, code="unknown_tag",
                               fields={"tag_ids": [str(t) for t in missing]})
    return tag_ids


def _platform_error(exc: WeChatApiError) -> ApplicationError:
    return ApplicationError(_("微信返回错误 %(code)s：%(message)s") % {
        "code": exc.errcode, "message": exc.errmsg}, code="wechat_error", status_code=502)


@transaction.atomic
def channel_code_create(*, actor: Actor, kind: str, name: str, oa_app: OAApp | None = None,
                        corp: WeComCorp | None = None, channel: str = "", campaign: str = "",
                        store: Store | None = None, guide_userids: list[str] = (),
                        tag_ids: list[int] = (), welcome_text: str = "",
                        expire_seconds: int | None = None, scene: str = "") -> ChannelCode:
    """Create the code on the platform and here.  OA codes are permanent unless
    ``expire_seconds`` (at most 30 days); WeCom codes rotate between ``guide_userids``.
    ``scene`` is for codes other apps route by (referral invites: ``ref_<code>``); by default
    a random one."""
    code = ChannelCode(tenant_id=actor.tenant.pk, kind=kind, name=name, channel=channel,
                       campaign=campaign, store=store, scene=scene or _scene(),
                       tag_ids=_check_tags(list(tag_ids)), welcome_text=welcome_text,
                       guide_userids=list(guide_userids))
    try:
        if kind == ChannelCode.Kind.OA_QR:
            _oa_code(code, oa_app, expire_seconds)
        else:
            _wecom_code(code, corp)
    except WeChatApiError as exc:
        raise _platform_error(exc) from exc
    code.save()
    audit_record(actor=actor, action="channels.code_create", target=code,
                 data={"kind": kind, "name": name, "scene": code.scene})
    return code


def _oa_code(code: ChannelCode, app: OAApp | None, expire_seconds: int | None) -> None:
    if app is None:
        raise ApplicationError(_("请选择公众号。"), code="oa_app_required",
                               fields={"oa_app": [_("必填")]})
    if expire_seconds is not None and not 60 <= expire_seconds <= TEMPORARY_MAX_SECONDS:
        raise ApplicationError(_("临时二维码有效期为 60 秒到 30 天。"), code="invalid_expiry",
                               fields={"expire_seconds": [_("超出范围")]})
    result = oa_api(app).qrcode_create(scene=code.scene, expire_seconds=expire_seconds)
    code.oa_app, code.ticket, code.url = app, result["ticket"], result.get("url", "")
    code.is_permanent = expire_seconds is None
    if expire_seconds is not None:
        code.expires_at = timezone.now() + timedelta(seconds=expire_seconds)


def _wecom_code(code: ChannelCode, corp: WeComCorp | None) -> None:
    if corp is None:
        raise ApplicationError(_("请选择企业微信。"), code="corp_required",
                               fields={"corp": [_("必填")]})
    if not code.guide_userids:
        raise ApplicationError(_("请至少选择一名接待员工。"), code="guides_required",
                               fields={"guide_userids": [_("必填")]})
    result = wecom_api(corp).contact_way_add(userids=code.guide_userids, state=code.scene,
                                             remark=code.name)
    code.corp, code.config_id, code.url = corp, result["config_id"], result.get("qr_code", "")


def channel_code_for_event(*, app: OAApp, message: dict[str, Any]) -> ChannelCode | None:
    scene = str(message.get("EventKey") or "").removeprefix("qrscene_")
    if not scene or str(message.get("Event", "")).lower() not in ("subscribe", "subscribe_scan",
                                                                 "scan"):
        return None
    return ChannelCode.objects.filter(kind=ChannelCode.Kind.OA_QR, oa_app=app, scene=scene,
                                      is_active=True).first()


# Scans and adds


def channel_scanned(*, app: OAApp, member: Member, scene: str, at: datetime, followed: bool,
                    is_new_member: bool) -> ChannelEvent | None:
    code = ChannelCode.objects.filter(kind=ChannelCode.Kind.OA_QR, oa_app=app,
                                      scene=scene).first() if scene else None
    if code is None:
        return None
    kind = ChannelEvent.Kind.FOLLOW if followed else ChannelEvent.Kind.SCAN
    return _attribute(code=code, member=member, kind=kind, at=at, is_new_member=is_new_member,
                      guide_userid=code.guide_userids[0] if code.guide_userids else "")


def channel_added(*, corp: WeComCorp, member: Member, state: str, guide_userid: str,
                  at: datetime, is_new_member: bool) -> ChannelEvent | None:
    code = ChannelCode.objects.filter(kind=ChannelCode.Kind.WECOM_CONTACT, corp=corp,
                                      scene=state).first() if state else None
    if code is None:
        return None
    return _attribute(code=code, member=member, kind=ChannelEvent.Kind.ADD, at=at,
                      is_new_member=is_new_member, guide_userid=guide_userid)


@transaction.atomic
def _attribute(*, code: ChannelCode, member: Member, kind: str, at: datetime,
               is_new_member: bool, guide_userid: str) -> ChannelEvent:
    event = ChannelEvent.objects.create(tenant_id=code.tenant_id, code=code, member=member,
                                        kind=kind, is_new_member=is_new_member,
                                        guide_userid=guide_userid, occurred_at=at)
    ChannelCode.objects.filter(pk=code.pk).update(
        scans=F("scans") + 1, new_members=F("new_members") + int(is_new_member))
    changes = _first_touch(code, member, at, is_new_member) | _assign(code, member,
                                                                      guide_userid)
    if changes:
        Member.objects.filter(pk=member.pk).update(**changes)
        from members import signals

        signals.members_changed.send(sender=Member, tenant_id=member.tenant_id,
                                     member_ids=[member.pk])
    for tag in Tag.objects.filter(pk__in=code.tag_ids):
        tag_apply_chunk(tag=tag, action="add", member_nos=[member.member_no],
                        actor=f"channel:{code.pk}", source=MemberTag.Source.SYSTEM)
    timeline_add(member=member, kind=f"channel.{kind}", actor="wechat", occurred_at=at,
                 data={"code_id": code.pk, "code": code.name, "channel": code.channel,
                       "campaign": code.campaign})
    return event


def _first_touch(code: ChannelCode, member: Member, at: datetime,
                 is_new_member: bool) -> dict[str, Any]:
    if not is_new_member and (member.first_touch or {}).get("code_id"):
        return {}
    if not is_new_member and member.first_touch and member.created_at < at - timedelta(
            minutes=10):
        return {}  # an existing member: this is not their first touch
    touch = {**(member.first_touch or {}), "code_id": code.pk, "code": code.name,
             "channel": code.channel or code.kind, "campaign": code.campaign,
             "store_id": code.store_id, "at": at.isoformat()}
    return {"first_touch": touch}


def _assign(code: ChannelCode, member: Member, guide_userid: str) -> dict[str, Any]:
    """The code's store and guide, for a member who has none yet."""
    changes: dict[str, Any] = {}
    if code.store_id and not member.store_id:
        changes["store_id"] = code.store_id
    if guide_userid and not member.guide_id:
        staff = StaffMembership.objects.filter(tenant_id=code.tenant_id,
                                               wecom_userid=guide_userid,
                                               is_active=True).first()
        if staff is not None:
            changes["guide_id"] = staff.pk
            if staff.store_id and not member.store_id:
                changes["store_id"] = staff.store_id
    return changes


# Statistics


def channel_code_stats(*, code: ChannelCode, now: datetime | None = None) -> dict[str, int]:
    """Scans, new members, and how many of those who came through the code still follow
    (or are still a contact) 7 and 30 days later."""
    now = now or timezone.now()
    events = ChannelEvent.objects.filter(code=code)
    totals = events.aggregate(scans=Count("pk"), members=Count("member", distinct=True),
                              new=Count("member", distinct=True, filter=Q(is_new_member=True)))
    result = {"scans": totals["scans"], "members": totals["members"],
              "new_members": totals["new"]}
    for days in (7, 30):
        cohort = events.filter(occurred_at__lte=now - timedelta(days=days)).values(
            "member_id").distinct()
        eligible = cohort.count()
        retained = _still_connected(code, cohort)
        result[f"eligible_{days}d"] = eligible
        result[f"retained_{days}d"] = retained
    return result


def _still_connected(code: ChannelCode, cohort) -> int:
    if code.kind == ChannelCode.Kind.OA_QR:
        return Follower.objects.filter(app_id=code.oa_app_id, member_id__in=cohort,
                                       is_subscribed=True).values("member_id").distinct().count()
    return ContactRelation.objects.filter(contact__corp_id=code.corp_id, member_id__in=cohort,
                                          status=ContactRelation.Status.ACTIVE).values(
        "member_id").distinct().count()
