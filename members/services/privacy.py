"""The data subject's rights (PIPL): everything held about one member, and erasure.

Both are for owners (``privacy:manage``) and audited.  Each app contributes what it holds
through ``members.privacy`` (export) and the ``member_erasing`` signal (erasure), so this
module never imports the apps above it."""

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members import signals
from members.models import (
    SENSITIVE_KINDS,
    ConsentPurpose,
    ConsentSource,
    Gender,
    Member,
    MemberConsent,
    MemberIdentity,
    MemberMerge,
    MemberNote,
    Order,
    TimelineEvent,
)
from members.privacy import SECTIONS, personal_data_section
from scrm import crypto
from scrm.access import PRIVACY_MANAGE, Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record

# What erasure blanks on the member row (and on the rows merged into it, which kept copies).
ERASED_VALUES: dict[str, Any] = {
    "name": "", "gender": Gender.UNKNOWN, "birthday": None, "province": "", "city": "",
    "phone_encrypted": "", "phone_hash": "", "phone_masked": "", "first_touch": {},
    "guide": None, "marketing_consent": False, "profiling_consent": False,
}


def _allowed(actor: Actor) -> None:
    if not actor.can(PRIVACY_MANAGE):
        raise ApplicationError(_("只有所有者可以处理个人信息请求。"), code="permission_denied",
                               status_code=403)


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


# The members app's own sections

def _profile(member: Member) -> dict:
    return {
        "id": member.pk, "member_no": member.member_no, "name": member.name,
        "gender": member.gender, "birthday": _time(member.birthday),
        "province": member.province, "city": member.city,
        "phone": crypto.decrypt(member.phone_encrypted) if member.phone_encrypted else "",
        "source_channel": member.source_channel, "first_touch": member.first_touch,
        "store": member.store.code if member.store_id else None,
        "guide": str(member.guide) if member.guide_id else None,
        "marketing_consent": member.marketing_consent,
        "profiling_consent": member.profiling_consent, "status": member.status,
        "created_at": _time(member.created_at), "updated_at": _time(member.updated_at),
    }


def _identities(member: Member) -> list[dict]:
    return [
        {"kind": row.kind, "app_id": row.app_id,
         "value": crypto.decrypt(row.value_encrypted)
         if row.kind in SENSITIVE_KINDS and row.value_encrypted else row.value,
         "created_at": _time(row.created_at)}
        for row in MemberIdentity.objects.filter(member=member).order_by("id")
    ]


def _orders(member: Member) -> list[dict]:
    orders = (Order.objects.filter(member=member).select_related("store")
              .prefetch_related("lines", "refunds").order_by("paid_at", "id"))
    return [
        {"id": order.pk, "channel": order.channel, "order_no": order.order_no,
         "store": order.store.code if order.store_id else None, "paid_at": _time(order.paid_at),
         "amount_fen": order.amount_fen, "refunded_fen": order.refunded_fen,
         "status": order.status,
         "lines": [{"sku": line.sku, "product": line.product, "category": line.category,
                    "quantity": line.quantity, "price_fen": line.price_fen}
                   for line in order.lines.all()],
         "refunds": [{"refund_no": refund.refund_no, "amount_fen": refund.amount_fen,
                      "reason": refund.reason, "created_at": _time(refund.created_at)}
                     for refund in order.refunds.all()]}
        for order in orders
    ]


def _timeline(member: Member) -> list[dict]:
    return [{"kind": event.kind, "occurred_at": _time(event.occurred_at), "data": event.data,
             "actor": event.actor}
            for event in TimelineEvent.objects.filter(member=member).order_by("occurred_at", "id")]


def _notes(member: Member) -> list[dict]:
    return [{"text": note.text, "author": note.author_name, "created_at": _time(note.created_at)}
            for note in MemberNote.objects.filter(member=member).order_by("created_at", "id")]


def _consents(member: Member) -> list[dict]:
    return [{"purpose": row.purpose, "granted": row.granted, "source": row.source,
             "actor": row.actor, "created_at": _time(row.created_at)}
            for row in MemberConsent.objects.filter(member=member).order_by("id")]


def _merges(member: Member) -> list[dict]:
    rows = MemberMerge.objects.filter(survivor=member).order_by("id")
    return [{"merged_id": row.merged_id, "reason": row.reason, "created_at": _time(row.created_at)}
            for row in rows]


for _name, _build in (("profile", _profile), ("identities", _identities), ("orders", _orders),
                      ("timeline", _timeline), ("notes", _notes), ("consents", _consents),
                      ("merges", _merges)):
    personal_data_section(_name, _build)


def member_personal_data(*, actor: Actor, member: Member, ip: str | None = None) -> dict:
    """Everything the tenant holds about ``member``, section by section (each app adds its
    own); the phone number and identities in full, as this is the person's own copy."""
    _allowed(actor)
    with transaction.atomic():
        audit_record(actor=actor, action="member.personal_data_exported", target=member, ip=ip,
                     data={"sections": sorted(SECTIONS)})
    return {"member_id": member.pk, "exported_at": _time(timezone.now()),
            **{name: build(member) for name, build in sorted(SECTIONS.items())}}


@transaction.atomic
def member_erase(*, actor: Actor, member: Member, ip: str | None = None) -> dict:
    """Remove the member's personal data and keep an anonymous row, so orders, the points
    ledger and coupons still add up.  Identities go, so nothing finds the member again and a
    later upsert of the same phone makes a new member.  Erasing twice changes nothing more;
    the answer says ``already_erased``."""
    _allowed(actor)
    locked = Member.objects.select_for_update().filter(pk=member.pk).first()
    if locked is None:
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    if locked.status == Member.Status.ERASED:
        return {"member_id": locked.pk, "already_erased": True,
                "erased_at": _time(locked.erased_at)}
    # Rows merged into this one kept copies of what they had: they go too.
    members = [locked, *Member.objects.select_for_update().filter(merged_into=locked)
               .exclude(status=Member.Status.ERASED).order_by("pk")]
    ids = [m.pk for m in members]
    now = timezone.now()
    removed = {
        "identities": MemberIdentity.objects.filter(member_id__in=ids).delete()[0],
        "notes": MemberNote.objects.filter(member_id__in=ids).delete()[0],
        "timeline": TimelineEvent.objects.filter(member_id__in=ids).delete()[0],
    }
    signals.member_erasing.send(sender=Member, tenant_id=locked.tenant_id, member_ids=ids,
                                removed=removed)
    Member.objects.filter(pk=locked.pk).update(**ERASED_VALUES, status=Member.Status.ERASED,
                                               erased_at=now, consent_updated_at=now,
                                               updated_at=now)
    Member.objects.filter(pk__in=ids[1:]).update(**ERASED_VALUES, erased_at=now, updated_at=now)
    MemberConsent.objects.bulk_create([
        MemberConsent(tenant_id=locked.tenant_id, member_id=locked.pk, purpose=purpose,
                      granted=False, source=ConsentSource.SYSTEM, actor=actor.label)
        for purpose in ConsentPurpose.values])
    signals.members_changed.send(sender=Member, tenant_id=locked.tenant_id, member_ids=ids,
                                 member_nos=[m.member_no for m in members])
    audit_record(actor=actor, action="member.erased", target=locked, ip=ip,
                 data={"member_ids": ids, "removed": removed})
    return {"member_id": locked.pk, "already_erased": False, "erased_at": _time(now),
            "removed": removed}
