"""What each recorded callback event does (run by the Celery task, inside the tenant)."""

import logging

from campaigns.referrals.services import referral_scan
from campaigns.services.automation import automation_trigger
from integrations.models import CallbackEvent, OAApp, TemplateMessage, WeComCorp
from integrations.services import channels, followers, wecom
from integrations.services.callbacks import event_time
from members.models import Member
from members.services import timeline_add

logger = logging.getLogger(__name__)


def event_handle(*, event: CallbackEvent) -> bool:
    """True when the event changed something, False when there was nothing to do."""
    if event.source == CallbackEvent.Source.OA:
        app = OAApp.objects.get(appid=event.account)
        return _oa(app, event.payload)
    corp = WeComCorp.objects.get(corpid=event.account)
    return _wecom(corp, event.payload)


# Official Account


def _scene(message: dict) -> str:
    key = str(message.get("EventKey") or "")
    return key.removeprefix("qrscene_")


def _oa(app: OAApp, message: dict) -> bool:
    event = str(message.get("Event") or "").lower()
    openid, at = message.get("FromUserName", ""), event_time(message)
    # wechatpy's parser names a follow through a QR code "subscribe_scan" (EventKey without
    # its "qrscene_" prefix).
    if event in ("subscribe", "subscribe_scan"):
        member, created = followers.follower_subscribed(app=app, openid=openid, at=at,
                                                        scene=_scene(message))
        channels.channel_scanned(app=app, member=member, scene=_scene(message), at=at,
                                 followed=True, is_new_member=created)
        _referral(message, member, created, at, followed=True)
        automation_trigger(trigger="followed",
                           occurrences={member.pk: f"follow:{app.appid}:{at:%Y-%m-%d}"})
        return True
    if event == "scan":
        member, created = followers.follower_subscribed(app=app, openid=openid, at=at)
        channels.channel_scanned(app=app, member=member, scene=_scene(message), at=at,
                                 followed=False, is_new_member=created)
        _referral(message, member, created, at, followed=False)
        return True
    if event == "unsubscribe":
        return followers.followers_unsubscribe(app=app, openids=[openid], at=at) > 0
    if event in ("click", "view"):
        return _menu(app, message, openid, at)
    if event == "templatesendjobfinish":
        return _template_finished(app, message)
    logger.info("OA event %s ignored", event or message.get("MsgType"))
    return False


def _referral(message: dict, member: Member, is_new_member: bool, at, *,
              followed: bool) -> None:
    """裂变: a referral invite's QR code (scene ``ref_<code>``) attributes the member to
    its inviter, and rewards them (``campaigns.referrals``)."""
    scene = _scene(message)
    if scene.startswith("ref_"):
        referral_scan(code=scene.removeprefix("ref_"), member=member,
                      is_new_member=is_new_member, at=at, followed=followed)


def _menu(app: OAApp, message: dict, openid: str, at) -> bool:
    member = Member.objects.filter(identities__kind="wechat_openid",
                                   identities__app_id=app.appid,
                                   identities__value=openid).first()
    if member is None:
        return False
    timeline_add(member=member, kind="oa.menu", actor="wechat", occurred_at=at,
                 data={"appid": app.appid, "event": message.get("Event"),
                       "key": message.get("EventKey", "")})
    return True


def _template_finished(app: OAApp, message: dict) -> bool:
    status = str(message.get("Status") or "")
    delivered = status == "success"
    updated = TemplateMessage.objects.filter(app=app, msgid=message.get("MsgID")).update(
        status=TemplateMessage.Status.DELIVERED if delivered else TemplateMessage.Status.FAILED,
        error="" if delivered else status[:255], finished_at=event_time(message))
    return bool(updated)


# WeCom


def _wecom(corp: WeComCorp, message: dict) -> bool:
    event = message.get("Event", "")
    if event == "change_external_contact":
        return wecom.contact_event(corp=corp, message=message)
    if event == "change_external_chat":
        return wecom.group_event(corp=corp, message=message)
    if event == "change_external_tag":
        from integrations.services.tagsync import corp_tags_pull

        corp_tags_pull(corp=corp)
        return True
    logger.info("WeCom event %s ignored", event)
    return False
