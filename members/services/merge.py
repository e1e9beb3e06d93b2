from django.db import transaction
from django.utils.translation import gettext as _

from members import signals
from members.models import (
    Member,
    MemberConsent,
    MemberIdentity,
    MemberMerge,
    Order,
    TimelineEvent,
)
from members.services.members import timeline_add
from members.services.stats import member_stats_refresh
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.events import event_record

GAP_FIELDS = ("name", "birthday", "province", "city", "store_id", "guide_id")


def _fill_gaps(survivor: Member, merged: Member) -> list[str]:
    filled = []
    for field in GAP_FIELDS:
        if not getattr(survivor, field) and getattr(merged, field):
            setattr(survivor, field, getattr(merged, field))
            filled.append(field)
    if survivor.gender == "unknown" and merged.gender != "unknown":
        survivor.gender = merged.gender
        filled.append("gender")
    if not survivor.phone_hash and merged.phone_hash:
        survivor.phone_encrypted = merged.phone_encrypted
        survivor.phone_hash = merged.phone_hash
        survivor.phone_masked = merged.phone_masked
        filled += ["phone_encrypted", "phone_hash", "phone_masked"]
    survivor.marketing_consent = survivor.marketing_consent or merged.marketing_consent
    # A withdrawal of profiling by either record is the person's word.
    survivor.profiling_consent = survivor.profiling_consent and merged.profiling_consent
    return filled


@transaction.atomic
def member_merge(
    *, actor: Actor, survivor: Member, merged: Member, reason: str = MemberMerge.Reason.MANUAL
) -> MemberMerge:
    """Move everything of ``merged`` to ``survivor`` and leave ``merged`` as a pointer.

    Rows are locked in primary-key order so two merges of the same pair cannot deadlock."""
    if survivor.pk == merged.pk:
        raise ApplicationError(_("不能将会员与自己合并。"), code="merge_same_member")
    locked = {
        m.pk: m
        for m in Member.objects.select_for_update()
        .filter(pk__in=sorted([survivor.pk, merged.pk]))
        .order_by("pk")
    }
    if len(locked) != 2:
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if Member.Status.MERGED in (survivor.status, merged.status):
        raise ApplicationError(_("已合并的会员不能再次合并。"), code="already_merged")
    if Member.Status.ERASED in (survivor.status, merged.status):
        raise ApplicationError(_("该会员的个人信息已删除，不能合并。"), code="member_erased",
                               status_code=409)
    moved = {
        "identities": MemberIdentity.objects.filter(member=merged).update(member=survivor),
        "orders": Order.objects.filter(member=merged).update(member=survivor),
        "timeline": TimelineEvent.objects.filter(member=merged).update(member=survivor),
        "consents": MemberConsent.objects.filter(member=merged).update(member=survivor),
    }
    signals.member_merging.send(
        sender=Member,
        tenant_id=survivor.tenant_id,
        survivor_id=survivor.pk,
        merged_id=merged.pk,
        moved=moved,
    )
    filled = _fill_gaps(survivor, merged)
    survivor.save(update_fields=[*filled, "marketing_consent", "profiling_consent",
                                 "updated_at"])
    Member.objects.filter(merged_into=merged).update(merged_into=survivor)
    merged.status, merged.merged_into = Member.Status.MERGED, survivor
    merged.save(update_fields=["status", "merged_into", "updated_at"])
    member_stats_refresh(member_ids=[survivor.pk, merged.pk])
    record = MemberMerge.objects.create(
        tenant_id=survivor.tenant_id,
        survivor=survivor,
        merged=merged,
        reason=reason,
        actor=actor.label,
        moved=moved,
    )
    audit_record(actor=actor, action="member.merged", target=survivor,
                 data={"merged_id": merged.pk, "reason": reason, "moved": moved})
    timeline_add(
        member=survivor,
        kind=TimelineEvent.Kind.MERGED,
        actor=actor.label,
        data={
            "merged_id": merged.pk,
            "merged_no": merged.member_no,
            "reason": reason,
            "moved": moved,
        },
    )
    event_record(tenant_id=survivor.tenant_id, type="member.merged",
                 data={"survivor_id": survivor.pk, "merged_id": merged.pk, "reason": reason})
    transaction.on_commit(
        lambda: signals.member_merged.send(
            sender=Member,
            tenant_id=survivor.tenant_id,
            survivor_id=survivor.pk,
            merged_id=merged.pk,
        )
    )
    return record
