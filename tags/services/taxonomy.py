from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record
from tags.audience.expressions import Parser
from tags.models import AudienceBitmap, MemberTag, ProductTag, Segment, Tag, TagGroup
from tags.selectors import rule_tags_forget

GROUP_FIELDS = ("name", "description", "color", "sort_order")
TAG_FIELDS = ("group", "name", "description", "kind", "target", "rule", "external_source",
              "external_id")


def _save(instance, message: str):
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise Conflict(message, code="name_taken") from exc
    return instance


@transaction.atomic
def tag_group_save(*, actor: Actor, group: TagGroup | None = None, **data) -> TagGroup:
    group = group or TagGroup(tenant_id=actor.tenant.pk)
    for key in GROUP_FIELDS:
        if key in data:
            setattr(group, key, data[key])
    return _save(group, _("标签组名称“%(name)s”已存在。") % {"name": group.name})


@transaction.atomic
def tag_group_delete(*, actor: Actor, group: TagGroup) -> None:
    if group.tags.exists():
        raise Conflict(_("标签组下还有标签，不能删除。"), code="group_not_empty")
    audit_record(actor=actor, action="tag_group.deleted", target=group,
                 data={"name": group.name})
    group.delete()


def rule_validate(rule: dict):
    from tags.services.rules import rule_parse

    return rule_parse(rule)


@transaction.atomic
def tag_save(*, actor: Actor, tag: Tag | None = None, **data) -> Tag:
    tag = tag or Tag(tenant_id=actor.tenant.pk)
    for key in TAG_FIELDS:
        if key in data:
            setattr(tag, key, data[key])
    if tag.kind == Tag.Kind.RULE:
        if not tag.rule:
            raise ApplicationError(_("规则标签需要规则。"), code="rule_required",
                                   fields={"rule": [_("必填")]})
        rule_validate(tag.rule)
    elif tag.rule:
        raise ApplicationError(_("只有规则标签可以设置规则。"), code="rule_not_allowed",
                               fields={"rule": [_("只有规则标签可以设置规则")]})
    rule_changed = tag.kind == Tag.Kind.RULE and "rule" in data
    tag = _save(tag, _("同一标签组下已有名为“%(name)s”的标签。") % {"name": tag.name})
    rule_tags_forget(actor.tenant.pk)
    if rule_changed:  # members enter and leave the tag now, not at the next scheduled run
        from tags.tasks import tag_rule_evaluate_task

        transaction.on_commit(lambda: tag_rule_evaluate_task.delay(actor.tenant.pk, tag.pk))
    return tag


def segments_using(tag: Tag) -> list[Segment]:
    from tags.audience.expressions import tag_ids

    parser = Parser()
    return [segment for segment in Segment.objects.all()
            if tag.pk in tag_ids(parser.parse(segment.expression))]


def rule_tags_using(tag: Tag) -> list[Tag]:
    """Rule tags whose rule names ``tag``: deleting it would break their evaluation."""
    from tags.audience.expressions import tag_ids
    from tags.services.rules import RuleParser

    parser = RuleParser()
    return [rule_tag for rule_tag in Tag.objects.filter(kind=Tag.Kind.RULE).exclude(pk=tag.pk)
            if rule_tag.rule and tag.pk in tag_ids(parser.parse(rule_tag.rule))]


@transaction.atomic
def tag_delete(*, actor: Actor, tag: Tag, confirm: bool = False) -> dict:
    """Delete a tag; one still in use needs ``confirm`` and the deletion is audited."""
    members = MemberTag.objects.filter(tag=tag).count()
    products = ProductTag.objects.filter(tag=tag).count()
    segments = [segment.name for segment in segments_using(tag)]
    rules = [rule_tag.name for rule_tag in rule_tags_using(tag)]
    if (members or products or segments or rules) and not confirm:
        raise Conflict(
            _("标签“%(name)s”正在使用：%(members)s 位会员、%(products)s 个商品、"
              "%(segments)s 个人群、%(rules)s 个规则标签。确认删除请加 confirm=true。") % {
                "name": tag.name, "members": members, "products": products,
                "segments": len(segments), "rules": len(rules)},
            code="tag_in_use",
            fields={"members": members, "products": products, "segments": segments,
                    "rules": rules},
        )
    audit_record(actor=actor, action="tag.deleted", target=tag,
                 data={"name": tag.name, "group": tag.group.name, "members": members,
                       "products": products, "segments": segments, "rules": rules})
    MemberTag.objects.filter(tag=tag).delete()
    ProductTag.objects.filter(tag=tag).delete()
    AudienceBitmap.objects.filter(field="tag", value=str(tag.pk)).delete()
    tag.delete()
    rule_tags_forget(actor.tenant.pk)
    return {"members": members, "products": products, "segments": segments, "rules": rules}
