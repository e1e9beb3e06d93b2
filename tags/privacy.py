"""The tags app's part of the data subject's rights: a member's tags in the personal-data
export; on erasure every tag goes; when profiling consent is withdrawn the tags that
profiling made (rule tags) go, and the rules leave the member out from then on."""

from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.dispatch import receiver

from members import signals
from members.privacy import personal_data_section
from tags.audience.index import audience_mark_dirty
from tags.models import MemberTag, Tag


def member_tags(member) -> list[dict]:
    return list(MemberTag.objects.filter(member=member).order_by("pk").values(
        "tag_id", "source", "created_at", tag_name=F("tag__name"), group=F("tag__group__name")))


def member_tags_drop(rows: QuerySet[MemberTag]) -> int:
    """Delete these member-tag rows, keeping tag counts and the audience index right."""
    counts: dict[int, int] = {}
    member_ids = set()
    for tag_id, member_id in rows.values_list("tag_id", "member_id"):
        counts[tag_id] = counts.get(tag_id, 0) + 1
        member_ids.add(member_id)
    for tag_id, count in counts.items():
        Tag.objects.filter(pk=tag_id).update(member_count=Greatest(F("member_count") - count, 0))
    deleted = rows.delete()[0]
    if member_ids:
        audience_mark_dirty(member_ids=sorted(member_ids))
    return deleted


@receiver(signals.member_erasing, dispatch_uid="tags.privacy.erase")
def erase_member_tags(sender, tenant_id: int, member_ids: list[int], removed: dict,
                      **kwargs) -> None:
    removed["tags"] = member_tags_drop(MemberTag.objects.filter(member_id__in=member_ids))


@receiver(signals.consent_changed, dispatch_uid="tags.privacy.profiling")
def drop_rule_tags(sender, tenant_id: int, member_id: int, purpose: str, granted: bool,
                   **kwargs) -> None:
    if purpose == "profiling" and not granted:
        member_tags_drop(MemberTag.objects.filter(member_id=member_id,
                                                  source=MemberTag.Source.RULE))


def register() -> None:
    personal_data_section("tags", member_tags)
