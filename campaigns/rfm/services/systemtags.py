"""The system tags that mirror segments and stages (group "RFM": one tag per segment,
external source "rfm"; group "生命周期": one per stage, source "lifecycle"), so audiences,
rules and campaigns select on them like on any tag.  Only members whose segment or stage
changed are touched, in bulk, without timeline events."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import TextChoices
from pyroaring import BitMap

from campaigns.rfm.codes import Segment, Stage
from members.models import Member
from tags.models import MemberTag, Tag, TagGroup
from tags.services.tagging import ADD, REMOVE, tag_apply_chunk

CHUNK = 50_000
SYSTEM = "system"


@dataclass(frozen=True)
class Family:
    source: str  # the tags' external_source
    group: str  # their TagGroup's name
    choices: type[TextChoices]


RFM = Family("rfm", "RFM", Segment)
LIFECYCLE = Family("lifecycle", "生命周期", Stage)


def _group(tenant_id: int, name: str) -> TagGroup:
    group, _created = TagGroup.objects.get_or_create(tenant_id=tenant_id, name=name)
    return group


def _create(tenant_id: int, family: Family, code: str, label: str) -> Tag:
    group = _group(tenant_id, family.group)
    for name in (label, f"{label}（{family.group}）"):  # the name may be taken in the group
        try:
            with transaction.atomic():
                return Tag.objects.create(tenant_id=tenant_id, group=group, name=name,
                                          kind=Tag.Kind.SYSTEM, external_source=family.source,
                                          external_id=code, description=f"{family.group}：{label}")
        except IntegrityError:
            found = Tag.objects.filter(external_source=family.source, external_id=code).first()
            if found is not None:  # created concurrently
                return found
    raise IntegrityError(f"no free name for the {family.source} tag {code}")


def family_tags(*, tenant_id: int, family: Family) -> dict[str, Tag]:
    """code -> the family's system tag, created when missing."""
    tags = {tag.external_id: tag for tag in Tag.objects.filter(
        external_source=family.source, external_id__in=family.choices.values)}
    for code, label in family.choices.choices:
        if code not in tags:
            tags[code] = _create(tenant_id, family, code, str(label))
    return tags


def tag_steps(*, tenant_id: int, family: Family, entered: dict[str, BitMap],
              left: dict[str, BitMap]) -> list[tuple[Tag, str, BitMap]]:
    """What to do, in a fixed order (so a checkpoint can name a step): take each code's tag
    off the members who left it, then put it on those who entered."""
    tags = family_tags(tenant_id=tenant_id, family=family)
    steps = []
    for code in family.choices.values:
        if left.get(code):
            steps.append((tags[code], REMOVE, left[code]))
        if entered.get(code):
            steps.append((tags[code], ADD, entered[code]))
    return steps


def chunks(member_nos: BitMap, after: int = -1) -> Iterable[list[int]]:
    """``member_nos`` above ``after``, CHUNK at a time."""
    start = member_nos.rank(after) if after >= 0 else 0
    for offset in range(start, len(member_nos), CHUNK):
        yield list(member_nos[offset:offset + CHUNK])


def tags_apply(steps: list[tuple[Tag, str, BitMap]], *, start: tuple[int, int] = (0, -1),
               on_chunk: Callable[[int, int, int], None] | None = None) -> int:
    """Apply ``steps`` from ``start`` (step, after member_no), one transaction per chunk;
    ``on_chunk(step, last member_no, size)`` runs inside each chunk's transaction (a checkpoint).
    Idempotent: re-applying a chunk changes nothing.  Returns how many tag rows changed."""
    changed = 0
    for index, (tag, action, member_nos) in enumerate(steps):
        if index < start[0]:
            continue
        after = start[1] if index == start[0] else -1
        for chunk in chunks(member_nos, after):
            with transaction.atomic():
                changed += tag_apply_chunk(tag=tag, action=action, member_nos=chunk,
                                           actor=SYSTEM, source=MemberTag.Source.SYSTEM,
                                           timeline=False)
                if on_chunk:
                    on_chunk(index, chunk[-1], len(chunk))
    return changed


def member_tags_reconcile(*, tenant_id: int, family: Family, member_id: int,
                          code: str | None) -> None:
    """The member carries the tag of ``code`` and no other tag of the family (a merge may
    have moved the loser's tags over)."""
    number = Member.objects.filter(pk=member_id).values_list("member_no", flat=True).first()
    if number is None:
        return
    held = set(MemberTag.objects.filter(member_id=member_id, tag__external_source=family.source)
               .values_list("tag__external_id", flat=True))
    if not held and not code:
        return
    tags = family_tags(tenant_id=tenant_id, family=family)
    for other in held - {code}:
        tag_apply_chunk(tag=tags[other], action=REMOVE, member_nos=[number], actor=SYSTEM,
                        source=MemberTag.Source.SYSTEM, timeline=False)
    if code and code not in held:
        tag_apply_chunk(tag=tags[code], action=ADD, member_nos=[number], actor=SYSTEM,
                        source=MemberTag.Source.SYSTEM, timeline=False)
