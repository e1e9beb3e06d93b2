"""Tier programmes: create and change a programme and its levels, each level with the system
tag its members carry (so audiences and rules can say ``{"tier": "gold"}``)."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from points.models import MemberTier, TierLevel, TierProgram
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record
from scrm.models import Brand
from tags.models import Tag, TagGroup

PROGRAM_FIELDS = (
    "name", "brand", "basis", "window_days", "review_days", "protection_days",
    "max_downgrade_steps", "growth_per_yuan", "growth_checkin", "growth_review",
    "growth_referral", "is_active",
)  # fmt: skip
LEVEL_FIELDS = (
    "code", "name", "threshold", "description", "discount_percent", "points_multiplier",
    "birthday_points", "birthday_coupon", "free_shipping", "exclusive_coupons",
    "lottery_weight", "priority_service",
)  # fmt: skip
TAG_GROUP = "会员等级"
MAX_LEVELS = 20


def _invalid(message: str, field: str = "levels") -> ApplicationError:
    return ApplicationError(message, code="invalid_tiers", fields={field: [message]})


def levels_validate(levels: list[dict[str, Any]]) -> None:
    """Levels are given lowest first; their thresholds must rise strictly (two levels
    reached by the same value would overlap) and their codes be distinct."""
    if not levels:
        raise _invalid(_("至少需要一个等级。"))
    if len(levels) > MAX_LEVELS:
        raise _invalid(_("最多 %(n)s 个等级。") % {"n": MAX_LEVELS})
    codes = [level.get("code") for level in levels]
    if len(set(codes)) != len(codes):
        raise _invalid(_("等级编码重复。"))
    thresholds = [level.get("threshold") for level in levels]
    if any(not isinstance(t, int) or isinstance(t, bool) or t < 0 for t in thresholds):
        raise _invalid(_("门槛必须是非负整数。"))
    for lower, higher in zip(levels, levels[1:], strict=False):
        if higher["threshold"] <= lower["threshold"]:
            raise ApplicationError(
                _("等级门槛重叠：“%(high)s”的门槛 %(t2)s 不高于“%(low)s”的 %(t1)s。") % {
                    "high": higher.get("name"), "t2": higher["threshold"],
                    "low": lower.get("name"), "t1": lower["threshold"]},
                code="tier_thresholds_overlap", fields={"levels": [_("门槛必须逐级递增。")]})


def _tag_group(tenant_id: int) -> TagGroup:
    group, _created = TagGroup.objects.get_or_create(tenant_id=tenant_id, name=TAG_GROUP)
    return group


def _tag_name(program: TierProgram, level: TierLevel) -> str:
    return f"{program.name}·{level.name}" if program.brand_id else level.name


def _level_tag(program: TierProgram, level: TierLevel) -> Tag:
    """The level's system tag, created or renamed to follow the level."""
    name = _tag_name(program, level)
    tag = Tag.objects.filter(pk=level.tag_id).first() if level.tag_id else None
    if tag is None:
        tag = Tag(tenant_id=program.tenant_id, group=_tag_group(program.tenant_id),
                  kind=Tag.Kind.SYSTEM, external_source="tier", external_id=level.code)
    tag.name, tag.description = name, _("会员等级：%(name)s") % {"name": level.name}
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError as exc:
        raise Conflict(_("标签“%(name)s”已存在，请换一个等级名称。") % {"name": name},
                       code="name_taken") from exc
    return tag


def _levels_save(program: TierProgram, levels: list[dict[str, Any]]) -> None:
    existing = {level.code: level for level in TierLevel.objects.filter(program=program)}
    wanted = {data["code"] for data in levels}
    dropped = [level for code, level in existing.items() if code not in wanted]
    if dropped and MemberTier.objects.filter(level__in=dropped).exists():
        raise Conflict(_("等级“%(name)s”下还有会员，不能删除。") % {"name": dropped[0].name},
                       code="level_in_use")
    for level in dropped:
        TierLevel.objects.filter(pk=level.pk).delete()
        Tag.objects.filter(pk=level.tag_id).delete()
    # Ranks and thresholds are unique: park the kept levels out of the way first.
    for offset, level in enumerate(existing.values()):
        if level.code in wanted:
            TierLevel.objects.filter(pk=level.pk).update(rank=1000 + offset,
                                                         threshold=-1 - offset)
    for rank, data in enumerate(levels, start=1):
        level = existing.get(data["code"]) or TierLevel(tenant_id=program.tenant_id,
                                                        program=program)
        for name in LEVEL_FIELDS:
            if name in data:
                setattr(level, name, data[name])
        level.rank = rank
        try:
            with transaction.atomic():
                level.save()
        except IntegrityError as exc:
            raise Conflict(_("等级编码“%(code)s”已被使用。") % {"code": level.code},
                           code="code_taken") from exc
        tag = _level_tag(program, level)
        if level.tag_id != tag.pk:
            TierLevel.objects.filter(pk=level.pk).update(tag=tag)


def _program_apply(program: TierProgram, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(PROGRAM_FIELDS)
    if unknown:
        raise _invalid(_("未知字段：%(names)s") % {"names": ", ".join(sorted(unknown))}, "program")
    for name, value in changes.items():
        if name == "brand" and value is not None and not isinstance(value, Brand):
            value = Brand.objects.filter(code=value).first()
            if value is None:
                raise _invalid(_("未知品牌。"), "brand")
        setattr(program, name, value)


@transaction.atomic
def tier_program_save(*, actor: Actor, program: TierProgram | None = None,
                      changes: dict[str, Any], levels: list[dict[str, Any]] | None = None
                      ) -> TierProgram:
    """Create a programme (``levels`` required) or change one (``levels``, when given,
    replaces the list: levels are matched by code, a level still held by members cannot be
    dropped).  Members move up at once when a lowered threshold qualifies them (a job);
    nobody moves down before their next review."""
    creating = program is None
    if creating and levels is None:
        raise _invalid(_("至少需要一个等级。"))
    program = program or TierProgram(tenant_id=actor.tenant.pk)
    _program_apply(program, changes)
    if levels is not None:
        levels_validate(levels)
    try:
        with transaction.atomic():
            program.save()
    except IntegrityError as exc:
        raise Conflict(_("该品牌已有等级体系。"), code="program_exists") from exc
    if levels is not None:
        _levels_save(program, levels)
    audit_record(actor=actor, action="tiers.program_create" if creating else
                 "tiers.program_update", target=program,
                 data={"changes": {k: str(v) for k, v in changes.items()},
                       "levels": [level.get("code") for level in levels or []]})
    if levels is not None and program.is_active:
        from points.tasks import tiers_sweep_task

        tenant_id, program_id = program.tenant_id, program.pk
        transaction.on_commit(lambda: tiers_sweep_task.delay(tenant_id, program_id))
    return program


def programs_for_brand(brand_id: int | None) -> list[TierProgram]:
    """The active programmes an activity at a store of ``brand_id`` counts towards: the
    tenant-wide one and the brand's own."""
    programs = TierProgram.objects.filter(is_active=True, brand__isnull=True)
    if brand_id is not None:
        programs = programs | TierProgram.objects.filter(is_active=True, brand_id=brand_id)
    return list(programs.order_by("pk"))
