"""What RFM and lifecycle add to audience expressions: ``{"rfm": "important_value"}`` and
``{"lifecycle": "dormant"}`` (a code or the Chinese name, or a list of them: any of them),
which become the segments' and stages' system tags."""

from typing import Any

from django.utils.translation import gettext as _

from campaigns.rfm.codes import resolve_codes
from campaigns.rfm.services.systemtags import LIFECYCLE, RFM, Family, family_tags
from scrm.tenancy import require_tenant_id
from tags.audience.fields import register_leaf


def _leaf(value: Any, family: Family, what: str) -> dict:
    codes = resolve_codes(value, family.choices, what)
    tags = family_tags(tenant_id=require_tenant_id(), family=family)
    leaves = [{"tag": tags[code].pk} for code in codes]
    return leaves[0] if len(leaves) == 1 else {"any": leaves}


def rfm_leaf(value: Any) -> dict:
    return _leaf(value, RFM, _("RFM 分群"))


def lifecycle_leaf(value: Any) -> dict:
    return _leaf(value, LIFECYCLE, _("生命周期阶段"))


def register() -> None:
    register_leaf("rfm", rfm_leaf)
    register_leaf("lifecycle", lifecycle_leaf)
