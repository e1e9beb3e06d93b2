"""Putting tags on members and taking them off: one at a time (marks the member dirty in the
audience index) or in bulk as a resumable job (writes the tag's bitmap directly)."""

import json

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _
from pyroaring import BitMap

from members.models import Member, TimelineEvent
from members.selectors import member_visible
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.events import event_record
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from tags.audience.index import audience_mark_dirty, audience_tag_update
from tags.models import MemberTag, Tag

CHUNK = 20_000
MANUAL_KINDS = (Tag.Kind.MANUAL, Tag.Kind.SYNCED)
ADD, REMOVE = "add", "remove"


def _check_manual(tag: Tag, source: str) -> None:
    if tag.target == Tag.Target.PRODUCT:
        raise ApplicationError(_("“%(name)s”是商品标签，不能打在会员身上。") % {
            "name": tag.name}, code="tag_not_for_members")
    if source == MemberTag.Source.MANUAL and tag.kind not in MANUAL_KINDS:
        raise ApplicationError(_("“%(name)s”是%(kind)s，不能手工增删。") % {
            "name": tag.name, "kind": tag.get_kind_display()}, code="tag_not_manual")


def _timeline(member_ids: list[int], tag: Tag, kind: str, actor: str, source: str) -> None:
    now = timezone.now()
    data = {"tag_id": tag.pk, "tag": tag.name, "source": source}
    if connection.vendor == "postgresql" and len(member_ids) > 1:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO members_timelineevent (tenant_id, member_id, kind, occurred_at,"
                " data, actor) SELECT %s, unnest(%s::bigint[]), %s, %s, %s::jsonb, %s",
                [tag.tenant_id, member_ids, kind, now, json.dumps(data, ensure_ascii=False),
                 actor])
        return
    TimelineEvent.objects.bulk_create([
        TimelineEvent(tenant_id=tag.tenant_id, member_id=member_id, kind=kind, occurred_at=now,
                      actor=actor, data=data)
        for member_id in member_ids
    ], batch_size=5000)


@transaction.atomic
def member_tag_add(*, actor: Actor, member: Member, tag: Tag,
                   source: str = MemberTag.Source.MANUAL) -> bool:
    """Tag a member; False when they already had it."""
    _check_manual(tag, source)
    _row, created = MemberTag.objects.get_or_create(
        tenant_id=member.tenant_id, member=member, tag=tag,
        defaults={"source": source, "tagged_by": actor.label})
    if created:
        Tag.objects.filter(pk=tag.pk).update(member_count=F("member_count") + 1)
        _timeline([member.pk], tag, "tag.added", actor.label, source)
        audience_mark_dirty(member_nos=[member.member_no])
        event_record(tenant_id=member.tenant_id, type="tag.added",
                     data={"member_id": member.pk, "tag_id": tag.pk, "source": source})
    return created


@transaction.atomic
def member_tag_remove(*, actor: Actor, member: Member, tag: Tag,
                      source: str = MemberTag.Source.MANUAL) -> bool:
    _check_manual(tag, source)
    deleted, _detail = MemberTag.objects.filter(member=member, tag=tag).delete()
    if deleted:
        Tag.objects.filter(pk=tag.pk).update(member_count=Greatest(F("member_count") - 1, 0))
        _timeline([member.pk], tag, "tag.removed", actor.label, source)
        audience_mark_dirty(member_nos=[member.member_no])
        event_record(tenant_id=member.tenant_id, type="tag.removed",
                     data={"member_id": member.pk, "tag_id": tag.pk, "source": source})
    return bool(deleted)


def members_by_no(member_nos: list[int]) -> dict[int, int]:
    """member_no -> id for the active members among ``member_nos``."""
    return dict(Member.objects.filter(member_no__in=member_nos, status=Member.Status.ACTIVE)
                .values_list("member_no", "pk"))


def _apply_postgres(tag: Tag, action: str, member_nos: list[int], actor: str,
                    source: str) -> dict[int, int]:
    """One set-based statement: the member numbers and ids that changed."""
    with connection.cursor() as cursor:
        if action == ADD:
            cursor.execute(
                "WITH added AS (INSERT INTO tags_membertag (tenant_id, member_id, tag_id, source,"
                " tagged_by, created_at) SELECT m.tenant_id, m.id, %s, %s, %s, now()"
                " FROM members_member m WHERE m.tenant_id = %s AND m.member_no = ANY(%s)"
                " AND m.status = 'active' ON CONFLICT (tenant_id, tag_id, member_id) DO NOTHING"
                " RETURNING member_id)"
                " SELECT m.member_no, m.id FROM added JOIN members_member m"
                " ON m.tenant_id = %s AND m.id = added.member_id",
                [tag.pk, source, actor, tag.tenant_id, member_nos, tag.tenant_id])
        else:
            cursor.execute(
                "DELETE FROM tags_membertag t USING members_member m WHERE t.tenant_id = %s"
                " AND t.tag_id = %s AND m.tenant_id = t.tenant_id AND m.id = t.member_id"
                " AND m.member_no = ANY(%s) RETURNING m.member_no, m.id",
                [tag.tenant_id, tag.pk, member_nos])
        return dict(cursor.fetchall())


def _apply_orm(tag: Tag, action: str, member_nos: list[int], actor: str,
               source: str) -> dict[int, int]:
    ids = members_by_no(member_nos)
    tagged = dict(MemberTag.objects.filter(tag=tag, member_id__in=ids.values())
                  .values_list("member__member_no", "member_id"))
    if action == ADD:
        new = {no: pk for no, pk in ids.items() if no not in tagged}
        MemberTag.objects.bulk_create([
            MemberTag(tenant_id=tag.tenant_id, member_id=pk, tag=tag, source=source,
                      tagged_by=actor) for pk in new.values()
        ], batch_size=5000, ignore_conflicts=True)
        return new
    MemberTag.objects.filter(tag=tag, member_id__in=tagged.values()).delete()
    return tagged


def tag_apply_chunk(*, tag: Tag, action: str, member_nos: list[int], actor: str,
                    source: str, timeline: bool = True) -> int:
    """Add or remove ``tag`` for one chunk of members, in the caller's transaction; returns
    how many members changed.  Idempotent: re-running a chunk changes nothing.  System tags
    that mirror another record (an OA follow) may leave the timeline to that record."""
    apply = _apply_postgres if connection.vendor == "postgresql" else _apply_orm
    changed = apply(tag, action, list(member_nos), actor, source)
    numbers = BitMap(changed)
    audience_tag_update(tag_id=tag.pk, added=numbers if action == ADD else BitMap(),
                        removed=numbers if action == REMOVE else BitMap())
    if changed:
        delta = len(changed) if action == ADD else -len(changed)
        Tag.objects.filter(pk=tag.pk).update(
            member_count=Greatest(F("member_count") + delta, 0))
        if timeline:
            _timeline(list(changed.values()), tag,
                      "tag.added" if action == ADD else "tag.removed", actor, source)
        # One event for the chunk (scrm/events.py): a row per member would cost more than
        # the tagging itself.
        event_record(tenant_id=tag.tenant_id,
                     type="tag.added" if action == ADD else "tag.removed",
                     data={"tag_id": tag.pk, "source": source,
                           "member_ids": sorted(changed.values())})
    return len(changed)


def tag_bulk_job_create(*, actor: Actor, tag: Tag, action: str, member_nos: BitMap) -> Job:
    """Queue a bulk add/remove of ``tag`` for ``member_nos``; the job reports progress."""
    from tags.tasks import tag_bulk_task

    _check_manual(tag, MemberTag.Source.MANUAL)
    if action not in (ADD, REMOVE):
        raise ApplicationError(_("action 应为 add 或 remove。"), code="invalid_action")
    job = job_create(actor=actor, kind="tag_bulk", total=len(member_nos),
                     params={"tag_id": tag.pk, "action": action},
                     payload=member_nos.serialize())
    transaction.on_commit(lambda: tag_bulk_task.delay(actor.tenant.pk, job.pk))
    return job


def member_nos_of(*, actor: Actor, member_ids: list[int]) -> BitMap:
    """The member numbers of ``member_ids``; every one must be visible to the actor."""
    found = dict(member_visible(actor=actor).filter(pk__in=member_ids)
                 .values_list("pk", "member_no"))
    missing = sorted(set(member_ids) - set(found))
    if missing:
        raise ApplicationError(
            _("以下会员不存在或不是您的客户：%(ids)s") % {"ids": ", ".join(map(str, missing[:20]))},
            code="members_not_visible", status_code=404, fields={"member_ids": missing[:100]})
    return BitMap(found.values())


def tag_bulk_run(*, job: Job) -> None:
    """Run (or resume) a bulk tagging job, one committed chunk at a time."""
    tag = Tag.objects.get(pk=job.params["tag_id"])
    member_nos = BitMap.deserialize(bytes(job.payload))
    after = job.checkpoint.get("after", -1)
    done, changed = job.done, job.result.get("changed", 0)
    job_start(job=job)
    remaining = member_nos[member_nos.rank(after):] if after >= 0 else member_nos
    chunk: list[int] = []
    for member_no in remaining:
        chunk.append(member_no)
        if len(chunk) == CHUNK:
            done, changed = _run_chunk(job, tag, chunk, done, changed)
            chunk = []
    if chunk:
        done, changed = _run_chunk(job, tag, chunk, done, changed)
    job_finish(job=job, result={"changed": changed, "done": done})


def _run_chunk(job: Job, tag: Tag, chunk: list[int], done: int, changed: int):
    with transaction.atomic():
        changed += tag_apply_chunk(tag=tag, action=job.params["action"], member_nos=chunk,
                                   actor=job.created_by, source=MemberTag.Source.MANUAL)
        done += len(chunk)
        job.result = {"changed": changed}
        Job.objects.filter(pk=job.pk).update(result=job.result)
        job_progress(job=job, done=done, checkpoint={"after": chunk[-1]})
    return done, changed
