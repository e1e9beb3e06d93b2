"""System tags that mirror WeChat state, so audiences and rule tags can select on it:
"follows this OA", "is a customer of this WeCom corp", "is in a customer group of this corp".
The sync and callback code keeps them in step (``tag_apply_chunk``)."""

from django.utils.translation import gettext as _

from tags.models import Tag, TagGroup

GROUP = "渠道"


def _system_tag(*, tenant_id: int, source: str, account: str, name: str,
                description: str) -> Tag:
    tag = Tag.objects.filter(external_source=source, external_id=account).first()
    if tag is not None:
        return tag
    group, _created = TagGroup.objects.get_or_create(tenant_id=tenant_id, name=GROUP)
    tag, _created = Tag.objects.get_or_create(
        tenant_id=tenant_id, external_source=source, external_id=account,
        defaults={"group": group, "name": name[:64], "kind": Tag.Kind.SYSTEM,
                  "description": description})
    return tag


def follower_tag(app) -> Tag:
    return _system_tag(tenant_id=app.tenant_id, source="oa_follow", account=app.appid,
                       name=_("关注公众号·%(name)s") % {"name": app.name},
                       description=_("关注公众号 %(appid)s 的会员") % {"appid": app.appid})


def customer_tag(corp) -> Tag:
    return _system_tag(tenant_id=corp.tenant_id, source="wecom_contact", account=corp.corpid,
                       name=_("企微客户·%(name)s") % {"name": corp.name},
                       description=_("是企业微信 %(corpid)s 员工的客户") % {"corpid": corp.corpid})


def group_member_tag(corp) -> Tag:
    return _system_tag(tenant_id=corp.tenant_id, source="wecom_group", account=corp.corpid,
                       name=_("客户群成员·%(name)s") % {"name": corp.name},
                       description=_("在企业微信 %(corpid)s 的客户群中") % {"corpid": corp.corpid})
