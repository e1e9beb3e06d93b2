"""What the points app adds to audience expressions: the points balance as a member field,
and tier leaves (``{"tier": "gold"}``, ``{"tier": ["gold", "platinum"]}``,
``{"tier": {"min": "gold"}}`` for that level and above), which become the levels' system
tags."""

from typing import Any

from django.utils.translation import gettext as _

from tags.audience.fields import NUMBER, Field, register_field, register_leaf

POINTS_BALANCE = Field(
    "points_balance", NUMBER, "points_account__balance",
    "COALESCE((SELECT a.balance FROM points_pointsaccount a "
    "WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id), 0)",
    null_as=0,
)


def _codes(value: Any) -> list[str]:
    from points.models import TierLevel

    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict) and set(value) == {"min"} and isinstance(value["min"], str):
        floor = TierLevel.objects.filter(code=value["min"]).first()
        if floor is None:
            raise ValueError(_("未知等级：%(codes)s") % {"codes": value["min"]})
        return list(TierLevel.objects.filter(program_id=floor.program_id, rank__gte=floor.rank)
                    .values_list("code", flat=True))
    raise ValueError(_("应为等级编码、编码数组或 {\"min\": 等级编码}"))


def tier_leaf(value: Any) -> dict:
    from points.models import TierLevel

    codes = _codes(value)
    tags = dict(TierLevel.objects.filter(code__in=codes, tag__isnull=False)
                .values_list("code", "tag_id"))
    missing = [code for code in codes if code not in tags]
    if missing:
        raise ValueError(_("未知等级：%(codes)s") % {"codes": ", ".join(missing)})
    leaves = [{"tag": tags[code]} for code in codes]
    return leaves[0] if len(leaves) == 1 else {"any": leaves}


def register() -> None:
    register_field(POINTS_BALANCE)
    register_leaf("tier", tier_leaf)
