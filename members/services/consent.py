"""Consent per purpose (PIPL): an append-only history, mirrored on the member's own flags
(``marketing_consent``, ``profiling_consent``) that campaigns, the audience index and the
profiling jobs read."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members import signals
from members.models import ConsentPurpose, ConsentSource, Member, MemberConsent
from members.services.members import timeline_add
from scrm.access import Actor
from scrm.api.errors import ApplicationError

# Which flag on Member holds the current state of each purpose.
MEMBER_FIELD = {
    ConsentPurpose.MARKETING: "marketing_consent",
    ConsentPurpose.PROFILING: "profiling_consent",
}


def consent_source_of(actor: Actor) -> str:
    if actor.api_key is not None:
        return ConsentSource.API
    if actor.membership is not None:
        return ConsentSource.DASHBOARD
    return ConsentSource.SYSTEM


def consent_history_add(*, actor: Actor, member: Member, purpose: str, granted: bool,
                        source: str | None = None) -> MemberConsent:
    """Only the history row; for callers that set the member's flag themselves."""
    return MemberConsent.objects.create(
        tenant_id=member.tenant_id, member=member, purpose=purpose, granted=granted,
        source=source or consent_source_of(actor), actor=actor.label)


@transaction.atomic
def consent_record(*, actor: Actor, member: Member, purpose: str, granted: bool,
                   source: str | None = None) -> MemberConsent:
    """Record that the member gave or withdrew consent for ``purpose`` and make it the
    member's current state.  Repeating a statement adds to the history (it is a new
    statement, with its own time) but changes nothing else."""
    if purpose not in MEMBER_FIELD:
        raise ApplicationError(_("未知的授权用途：%(purpose)s") % {"purpose": purpose},
                               code="unknown_purpose", fields={"purpose": [_("未知")]})
    if source is not None and source not in ConsentSource.values:
        raise ApplicationError(_("未知的授权来源：%(source)s") % {"source": source},
                               code="unknown_source", fields={"source": [_("未知")]})
    locked = Member.objects.select_for_update().filter(pk=member.pk).first()
    if locked is None:
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    if locked.status == Member.Status.ERASED:
        raise ApplicationError(_("该会员的个人信息已删除。"), code="member_erased",
                               status_code=409)
    record = consent_history_add(actor=actor, member=locked, purpose=purpose, granted=granted,
                                 source=source)
    field = MEMBER_FIELD[purpose]
    if getattr(locked, field) != granted:
        now = timezone.now()
        Member.objects.filter(pk=locked.pk).update(
            **{field: granted, "consent_updated_at": now, "updated_at": now})
        setattr(member, field, granted)
        member.consent_updated_at = now
        timeline_add(member=locked, kind="consent.changed", actor=actor.label,
                     data={"purpose": purpose, "granted": granted, "source": record.source})
        signals.consent_changed.send(sender=Member, tenant_id=locked.tenant_id,
                                     member_id=locked.pk, purpose=purpose, granted=granted)
        signals.members_changed.send(sender=Member, tenant_id=locked.tenant_id,
                                     member_ids=[locked.pk], member_nos=[locked.member_no])
        transaction.on_commit(lambda: signals.member_updated.send(
            sender=Member, tenant_id=locked.tenant_id, member_id=locked.pk, changed=[field]))
    return record
