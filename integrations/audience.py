"""Audience leaves for WeChat state: ``{"oa_follower": true}`` (follows any of the tenant's
OAs) or ``{"oa_follower": "wx…"}`` (that one); ``{"wecom_customer": true | "ww…"}``;
``{"group_member": true | "ww…"}``.  Each becomes the system tags that mirror that state."""

from typing import Any

from django.utils.translation import gettext as _

from tags.audience.fields import register_leaf

SOURCES = {"oa_follower": "oa_follow", "wecom_customer": "wecom_contact",
           "group_member": "wecom_group"}


def _resolver(source: str):
    def resolve(value: Any) -> dict:
        from tags.models import Tag

        tags = Tag.objects.filter(external_source=source)
        if value is not True:
            if not isinstance(value, str) or not value:
                raise ValueError(_("应为 true 或账号 ID（AppID / CorpID）"))
            tags = tags.filter(external_id=value)
        ids = sorted(tags.values_list("pk", flat=True))
        if not ids:
            if value is True:
                raise ValueError(_("尚未接入或同步任何账号"))
            raise ValueError(_("未接入或尚未同步的账号：%(id)s") % {"id": value})
        leaves = [{"tag": tag_id} for tag_id in ids]
        return leaves[0] if len(leaves) == 1 else {"any": leaves}

    return resolve


def register() -> None:
    for leaf, source in SOURCES.items():
        register_leaf(leaf, _resolver(source))
