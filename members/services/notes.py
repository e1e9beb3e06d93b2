"""Guides' notes (备注) on their customers."""

from django.db import transaction
from django.utils.translation import gettext as _

from members.models import Member, MemberNote
from members.selectors import member_visible
from members.services.members import timeline_add
from scrm.access import MEMBERS_WRITE, Actor
from scrm.api.errors import ApplicationError

NOTE_MAX_LENGTH = 1000


@transaction.atomic
def member_note_add(*, actor: Actor, member: Member, text: str) -> MemberNote:
    """A note on a member the actor may see (a guide: their own customer), on the timeline
    too."""
    if not actor.can(MEMBERS_WRITE):
        raise ApplicationError(_("当前角色无权添加备注。"), code="permission_denied",
                               status_code=403)
    if not member_visible(actor=actor).filter(pk=member.pk).exists():
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    text = text.strip()
    if not text:
        raise ApplicationError(_("备注不能为空。"), code="invalid_note",
                               fields={"text": [_("必填")]})
    if len(text) > NOTE_MAX_LENGTH:
        raise ApplicationError(_("备注最多 %(n)s 字。") % {"n": NOTE_MAX_LENGTH},
                               code="invalid_note", fields={"text": [_("过长")]})
    membership = actor.membership
    note = MemberNote.objects.create(
        tenant_id=actor.tenant.pk, member=member, author=membership, text=text,
        author_name=str(membership) if membership else actor.label)
    timeline_add(member=member, kind="note.added", actor=actor.label,
                 data={"note_id": note.pk, "text": text[:100]})
    return note
