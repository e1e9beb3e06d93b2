from django.db import transaction
from django.utils import timezone
from pyroaring import BitMap

from members.models import Member
from members.selectors import member_relations, member_visible
from scrm.access import Actor
from scrm.audit import audit_record
from scrm.models import Store
from tags.audience.expressions import Parser
from tags.audience.index import audience_bitmap
from tags.models import Segment, SegmentSnapshot, Tag


def _known_tags(ids: set[int]) -> set[int]:
    return set(Tag.objects.filter(pk__in=ids).values_list("pk", flat=True))


def _store_id(code: str) -> int | None:
    return Store.objects.filter(code=code).values_list("pk", flat=True).first()


def expression_parse(expression):
    """Validate an audience expression against the tenant's tags and stores."""
    return Parser(known_tags=_known_tags, stores=_store_id).parse(expression)


def expression_members(expression) -> BitMap:
    return audience_bitmap(expression_parse(expression))


@transaction.atomic
def segment_save(*, actor: Actor, segment: Segment | None = None, **data) -> Segment:
    segment = segment or Segment(tenant_id=actor.tenant.pk, created_by=actor.label)
    for key in ("name", "description", "expression"):
        if key in data:
            setattr(segment, key, data[key])
    expression_parse(segment.expression)
    segment.save()
    return segment


@transaction.atomic
def segment_delete(*, actor: Actor, segment: Segment) -> None:
    audit_record(actor=actor, action="segment.deleted", target=segment,
                 data={"name": segment.name})
    segment.delete()


def segment_count(*, segment: Segment) -> int:
    count = len(expression_members(segment.expression))
    Segment.objects.filter(pk=segment.pk).update(last_count=count,
                                                 last_counted_at=timezone.now())
    return count


def visible_members(*, actor: Actor, member_nos: BitMap) -> BitMap:
    """``member_nos`` cut down to the members the actor may see (a guide's own customers, a
    store manager's store)."""
    if actor.guide_id is None and actor.store_id is None:
        return member_nos
    return member_nos & BitMap(member_visible(actor=actor).filter(
        status=Member.Status.ACTIVE).values_list("member_no", flat=True))


def segment_page(*, member_nos: BitMap, after: int | None, size: int,
                 descending: bool = False) -> tuple[list[Member], int | None]:
    """One page of members in member-number order, after ``after``, and the cursor of the
    next page (None on the last).  ``descending``: newest members first, ``after`` then
    being the last member number of the previous page."""
    if descending:
        stop = len(member_nos) if after is None else member_nos.rank(after - 1)
        start = max(stop - size, 0)
        page = list(reversed(member_nos[start:stop]))
        has_more = start > 0
    else:
        start = member_nos.rank(after) if after is not None else 0
        page = list(member_nos[start:start + size])
        has_more = start + size < len(member_nos)
    members = {m.member_no: m for m in Member.objects.filter(member_no__in=page)
               .select_related("store", "guide").prefetch_related(*member_relations())}
    next_after = page[-1] if page and has_more else None
    return [members[no] for no in page if no in members], next_after


@transaction.atomic
def segment_snapshot(*, actor: Actor, segment: Segment) -> SegmentSnapshot:
    """Freeze the segment's members now, for a campaign."""
    member_nos = expression_members(segment.expression)
    member_nos.run_optimize()
    return SegmentSnapshot.objects.create(
        tenant_id=actor.tenant.pk, segment=segment, expression=segment.expression,
        member_count=len(member_nos), bitmap=member_nos.serialize(), created_by=actor.label)


def snapshot_members(snapshot: SegmentSnapshot) -> BitMap:
    return BitMap.deserialize(bytes(snapshot.bitmap))
