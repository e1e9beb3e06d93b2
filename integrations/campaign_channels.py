"""The message channels this app gives campaigns and automations: OA template messages and
WeCom mass messages (one task per guide, to their customers among the audience)."""

from typing import Any

from django.utils.translation import gettext as _

from campaigns.services.channels import Channel, channel_register
from integrations.models import ContactRelation, OAApp, WeComCorp
from members.models import Member


def _oa_validate(params: dict[str, Any]) -> None:
    if not OAApp.objects.filter(appid=params.get("appid"), is_active=True).exists():
        raise ValueError(_("公众号 %(appid)s 未接入。") % {"appid": params.get("appid")})
    if not params.get("template_id") or not isinstance(params.get("data"), dict):
        raise ValueError(_("模板消息需要 template_id 和 data。"))


def _oa_send(member: Member, params: dict[str, Any], key: str) -> str:
    from integrations.services.messages import template_send

    app = OAApp.objects.get(appid=params["appid"])
    message = template_send(app=app, member=member, template_id=params["template_id"],
                            data=params["data"], url=params.get("url", ""), key=key[:64])
    return message.status


def _mass_validate(params: dict[str, Any]) -> None:
    if not WeComCorp.objects.filter(corpid=params.get("corpid"), is_active=True).exists():
        raise ValueError(_("企业微信 %(corpid)s 未接入。") % {"corpid": params.get("corpid")})
    if not str(params.get("text") or "").strip():
        raise ValueError(_("群发任务需要内容。"))


def _mass_send(members: list[Member], params: dict[str, Any],
               key_prefix: str) -> dict[int, str]:
    """A task for each guide holding some of ``members`` (a member with several guides goes
    to the first of them); members without a guide in the corp are not reachable here."""
    from integrations.services.messages import mass_message_create

    corp = WeComCorp.objects.get(corpid=params["corpid"])
    guide_of: dict[int, str] = {}
    for member_id, userid in ContactRelation.objects.filter(
            contact__corp=corp, member_id__in=[m.pk for m in members],
            status=ContactRelation.Status.ACTIVE).order_by("added_at").values_list(
            "member_id", "user__userid"):
        guide_of.setdefault(member_id, userid)
    by_guide: dict[str, list[int]] = {}
    for member_id, userid in guide_of.items():
        by_guide.setdefault(userid, []).append(member_id)
    from scrm.access import Actor

    actor = Actor(tenant=corp.tenant)
    for userid, member_ids in by_guide.items():
        mass_message_create(actor=actor, corp=corp, sender_userid=userid,
                            member_ids=member_ids, text=params["text"],
                            key=f"{key_prefix}:{userid}"[:128])
    return {m.pk: "queued_for_guide" if m.pk in guide_of else "no_guide" for m in members}


def register() -> None:
    channel_register(Channel("oa_template", send=_oa_send, validate=_oa_validate))
    channel_register(Channel("wecom_mass", send_many=_mass_send, validate=_mass_validate))
