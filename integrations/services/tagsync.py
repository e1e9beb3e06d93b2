"""Tags both ways: OA tags (公众号标签) and WeCom corp tags (企业标签) mirrored as SCRM tags of
kind ``synced`` (external ids ``<appid>:<id>`` / ``<corpid>:<id>``), and SCRM tags pushed to
them.

Conflicts are settled the same way every time: for a synced tag, the platform wins on its
name and its members on a pull (a pull makes the SCRM match it exactly); a name already used
by another SCRM tag in the group gets the platform's suffix; a push creates the platform tag
and links it, then tags members from the SCRM side.  Every decision is logged."""

import logging

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from integrations.models import ContactRelation, Follower, OAApp, WeComCorp
from integrations.services.connections import oa_api, wecom_api
from integrations.services.followers import with_backoff
from members.models import Member
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from tags.models import MemberTag, Tag, TagGroup
from tags.services.tagging import tag_apply_chunk

logger = logging.getLogger(__name__)

OA_SOURCE, WECOM_SOURCE = "oa_tag", "wecom_tag"
CHUNK = 10_000


def _synced_tag(*, tenant_id: int, source: str, external_id: str, group: TagGroup,
                name: str, suffix: str) -> Tag:
    tag = Tag.objects.filter(external_source=source, external_id=external_id).first()
    if tag is not None and tag.name == name:
        return tag
    tag = tag or Tag(tenant_id=tenant_id, external_source=source, external_id=external_id,
                     kind=Tag.Kind.SYNCED, group=group)
    for candidate in (name, f"{name}（{suffix}）", f"{name}（{suffix} {external_id}）"):
        tag.name = candidate[:64]
        try:
            with transaction.atomic():
                tag.save()
            if candidate != name:
                logger.info("tag %s named %r: %r is taken in group %s", external_id, candidate,
                            name, group.name)
            return tag
        except IntegrityError:
            continue
    raise ApplicationError(_("无法为同步标签“%(name)s”命名。") % {"name": name},
                           code="name_taken")


def _members_set(tag: Tag, member_nos: set[int]) -> dict[str, int]:
    """Make ``tag``'s members exactly ``member_nos`` (the platform's view)."""
    current = set(MemberTag.objects.filter(tag=tag).values_list("member__member_no",
                                                                flat=True))
    added, removed = sorted(member_nos - current), sorted(current - member_nos)
    for action, numbers in (("add", added), ("remove", removed)):
        for start in range(0, len(numbers), CHUNK):
            tag_apply_chunk(tag=tag, action=action, member_nos=numbers[start:start + CHUNK],
                            actor="sync", source=MemberTag.Source.SYNC)
    return {"added": len(added), "removed": len(removed)}


def _holding(rows, field: str, tag_key) -> set[int]:
    """Member numbers of the rows (followers or relations) whose platform tag list
    (``field``) holds ``tag_key``."""
    if connection.vendor == "postgresql":
        return set(rows.filter(**{f"{field}__contains": [tag_key]}).values_list(
            "member__member_no", flat=True))
    return {number for number, held in rows.values_list("member__member_no", field)
            if tag_key in (held or [])}


# OA tags


@transaction.atomic
def oa_tags_pull(*, app: OAApp) -> dict[str, int]:
    """The OA's tags and who has them (from the followers' last sync) into the SCRM."""
    group, _created = TagGroup.objects.get_or_create(
        tenant_id=app.tenant_id, name=_("公众号标签·%(name)s") % {"name": app.name})
    platform = with_backoff(lambda: oa_api(app).tags())
    counts = {"tags": 0, "added": 0, "removed": 0, "deleted": 0}
    keep = []
    for item in platform:
        external_id = f"{app.appid}:{item['id']}"
        keep.append(external_id)
        tag = _synced_tag(tenant_id=app.tenant_id, source=OA_SOURCE, external_id=external_id,
                          group=group, name=item["name"], suffix=_("公众号"))
        rows = Follower.objects.filter(app=app, is_subscribed=True)
        changed = _members_set(tag, _holding(rows, "oa_tag_ids", int(item["id"])))
        counts["tags"] += 1
        counts["added"] += changed["added"]
        counts["removed"] += changed["removed"]
    counts["deleted"] = _drop_missing(OA_SOURCE, f"{app.appid}:", keep)
    return counts


def _drop_missing(source: str, prefix: str, keep: list[str]) -> int:
    """Synced tags whose platform tag is gone are deleted (their member tags with them)."""
    gone = Tag.objects.filter(external_source=source, external_id__startswith=prefix).exclude(
        external_id__in=keep)
    for tag in gone:
        logger.info("synced tag %s (%s) deleted on the platform", tag.external_id, tag.name)
    deleted, _detail = gone.delete()
    return deleted


def oa_tag_push(*, actor: Actor, app: OAApp, tag: Tag) -> Tag:
    """Create ``tag`` on the OA (once) and tag its followers there, 50 openids a call."""
    api = oa_api(app)
    external = tag.external_id if tag.external_source == OA_SOURCE else ""
    if not external:
        created = with_backoff(lambda: api.tag_create(tag.name[:30]))
        external = f"{app.appid}:{created['id']}"
        Tag.objects.filter(pk=tag.pk).update(external_source=OA_SOURCE, external_id=external)
    tag_id = int(external.split(":", 1)[1])
    openids = list(Follower.objects.filter(
        app=app, is_subscribed=True,
        member__in=MemberTag.objects.filter(tag=tag).values("member_id")).values_list(
        "openid", flat=True))
    for start in range(0, len(openids), 50):
        chunk = openids[start:start + 50]
        with_backoff(lambda chunk=chunk: api.tag_members(tag_id, chunk))
    return Tag.objects.get(pk=tag.pk)


# WeCom corp tags


@transaction.atomic
def corp_tags_pull(*, corp: WeComCorp) -> dict[str, int]:
    """The corp's tag groups and tags, and which customers have them (from the guides'
    relations), into the SCRM."""
    platform = with_backoff(lambda: wecom_api(corp).corp_tags())
    counts = {"tags": 0, "added": 0, "removed": 0, "deleted": 0}
    keep = []
    for group_data in platform:
        group, _created = TagGroup.objects.get_or_create(tenant_id=corp.tenant_id,
                                                         name=group_data["group_name"][:64])
        for item in group_data.get("tag", []):
            if item.get("deleted"):
                continue
            external_id = f"{corp.corpid}:{item['id']}"
            keep.append(external_id)
            tag = _synced_tag(tenant_id=corp.tenant_id, source=WECOM_SOURCE,
                              external_id=external_id, group=group, name=item["name"],
                              suffix=_("企微"))
            rows = ContactRelation.objects.filter(contact__corp=corp,
                                                  status=ContactRelation.Status.ACTIVE)
            changed = _members_set(tag, _holding(rows, "corp_tag_ids", item["id"]))
            counts["tags"] += 1
            counts["added"] += changed["added"]
            counts["removed"] += changed["removed"]
    counts["deleted"] = _drop_missing(WECOM_SOURCE, f"{corp.corpid}:", keep)
    return counts


def corp_tag_mark(*, actor: Actor, corp: WeComCorp, member: Member, tag: Tag,
                  add: bool) -> int:
    """Put (or take off) a synced corp tag on the member in WeCom, on each guide's view of
    them; the SCRM member tag follows.  Returns the relations marked."""
    if tag.external_source != WECOM_SOURCE or not tag.external_id.startswith(f"{corp.corpid}:"):
        raise ApplicationError(_("该标签不是此企业微信的企业标签。"), code="not_a_corp_tag")
    tag_id = tag.external_id.split(":", 1)[1]
    api, marked = wecom_api(corp), 0
    relations = ContactRelation.objects.select_related("contact", "user").filter(
        contact__corp=corp, member=member, status=ContactRelation.Status.ACTIVE)
    for relation in relations:
        with_backoff(lambda r=relation: api.mark_tag(
            userid=r.user.userid, external_userid=r.contact.external_userid,
            add=[tag_id] if add else [], remove=[] if add else [tag_id]))
        ids = set(relation.corp_tag_ids) | {tag_id} if add else set(relation.corp_tag_ids) - {
            tag_id}
        ContactRelation.objects.filter(pk=relation.pk).update(corp_tag_ids=sorted(ids))
        marked += 1
    tag_apply_chunk(tag=tag, action="add" if add else "remove", member_nos=[member.member_no],
                    actor=actor.label, source=MemberTag.Source.SYNC)
    return marked


def corp_tag_push(*, actor: Actor, corp: WeComCorp, tag: Tag) -> Tag:
    """Create ``tag`` as a corp tag (in a WeCom tag group named like the SCRM tag group) once,
    link it, and mark it on the guides' views of the tag's members."""
    external = tag.external_id if tag.external_source == WECOM_SOURCE else ""
    if not external:
        group = with_backoff(lambda: wecom_api(corp).corp_tag_add(group_name=tag.group.name[:30],
                                                                  names=[tag.name[:30]]))
        created = next(t for t in group.get("tag", []) if t.get("name") == tag.name[:30])
        external = f"{corp.corpid}:{created['id']}"
        Tag.objects.filter(pk=tag.pk).update(external_source=WECOM_SOURCE, kind=Tag.Kind.SYNCED,
                                             external_id=external)
        tag.refresh_from_db()
    members = Member.objects.filter(pk__in=MemberTag.objects.filter(tag=tag).values("member_id"))
    for member in members.iterator(chunk_size=500):
        corp_tag_mark(actor=actor, corp=corp, member=member, tag=tag, add=True)
    return tag
