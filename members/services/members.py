from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members import signals
from members.identities import Identity, mask_phone, normalize_identities
from members.models import Gender, IdentityKind, Member, MemberIdentity, MemberMerge, TimelineEvent
from members.services.numbers import member_numbers_allocate
from members.services.stats import member_stats_refresh
from scrm import crypto
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record

PROFILE_FIELDS = (
    "name",
    "gender",
    "birthday",
    "province",
    "city",
    "source_channel",
    "first_touch",
    "store",
    "guide",
    "marketing_consent",
)
UPSERT_ATTEMPTS = 3


def timeline_add(
    *, member: Member, kind: str, data: dict | None = None, actor: str = "", occurred_at=None
) -> TimelineEvent:
    return TimelineEvent.objects.create(
        tenant_id=member.tenant_id,
        member=member,
        kind=kind,
        data=data or {},
        actor=actor,
        occurred_at=occurred_at or timezone.now(),
    )


def identities_lookup(identities: Iterable[Identity]) -> list[MemberIdentity]:
    condition = Q()
    for identity in identities:
        condition |= Q(kind=identity.kind, app_id=identity.app_id, value=identity.value)
    return list(MemberIdentity.objects.filter(condition).select_related("member"))


def identities_attach(
    *, member: Member, identities: Iterable[Identity], known: set[tuple[str, str, str]], actor: str
) -> list[str]:
    added = [
        MemberIdentity(
            tenant_id=member.tenant_id,
            member=member,
            kind=identity.kind,
            app_id=identity.app_id,
            value=identity.value,
            display=identity.display,
            value_encrypted=identity.encrypted,
        )
        for identity in identities
        if identity.key not in known
    ]
    MemberIdentity.objects.bulk_create(added)
    for row in added:
        timeline_add(
            member=member,
            kind=TimelineEvent.Kind.IDENTITY_ADDED,
            actor=actor,
            data={"kind": row.kind, "app_id": row.app_id, "display": row.display},
        )
    return [row.kind for row in added]


def _phone_apply(member: Member, phone: str) -> None:
    member.phone_encrypted = crypto.encrypt(phone)
    member.phone_hash = crypto.blind_index(phone)
    member.phone_masked = mask_phone(phone)


def _profile_apply(member: Member, profile: dict[str, Any]) -> list[str]:
    changed = []
    for field in PROFILE_FIELDS:
        if field in profile and getattr(member, field) != profile[field]:
            setattr(member, field, profile[field])
            changed.append(field)
    if "marketing_consent" in changed:
        member.consent_updated_at = timezone.now()
    return changed


def _member_visible(actor: Actor, member: Member) -> bool:
    if actor.guide_id is not None:
        return member.guide_id == actor.guide_id
    if actor.store_id is not None:
        return member.store_id == actor.store_id
    return True


def _scope_defaults(actor: Actor, profile: dict[str, Any]) -> dict[str, Any]:
    """Guides and store managers create members in their own book."""
    if actor.guide_id is not None:
        profile = {**profile, "guide": actor.membership, "store": actor.membership.store}
    elif actor.store_id is not None:
        profile = {**profile, "store": actor.membership.store}
    return profile


def _member_create(*, actor: Actor, identities: list[Identity], profile: dict) -> Member:
    (member_no,) = member_numbers_allocate(tenant_id=actor.tenant.pk, count=1)
    member = Member(tenant_id=actor.tenant.pk, member_no=member_no)
    _profile_apply(member, _scope_defaults(actor, profile))
    phone = next((i.plain for i in identities if i.kind == IdentityKind.PHONE), None)
    if phone:
        _phone_apply(member, phone)
    member.save()
    timeline_add(
        member=member,
        kind=TimelineEvent.Kind.CREATED,
        actor=actor.label,
        data={"source_channel": member.source_channel},
    )
    identities_attach(member=member, identities=identities, known=set(), actor=actor.label)
    member_stats_refresh(member_ids=[member.pk])  # every member has a stats row
    transaction.on_commit(
        lambda: signals.member_created.send(
            sender=Member, tenant_id=member.tenant_id, member_id=member.pk
        )
    )
    return member


def _gaps(member: Member, defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults for fields the member has no value for yet."""
    return {key: value for key, value in defaults.items()
            if getattr(member, key) in (None, "", Gender.UNKNOWN)}


def _resolve(*, actor: Actor, identities: list[Identity], profile: dict,
             defaults: dict) -> tuple[Member, str]:
    from members.services.merge import member_merge

    rows = identities_lookup(identities)
    members = sorted({row.member for row in rows}, key=lambda m: (m.created_at, m.pk))
    if not members:
        member = _member_create(actor=actor, identities=identities,
                                profile={**defaults, **profile})
        return member, "created"
    survivor, outcome = members[0], "updated"
    for other in members[1:]:
        member_merge(
            actor=actor, survivor=survivor, merged=other, reason=MemberMerge.Reason.AUTOMATIC
        )
        outcome = "merged"
    if not _member_visible(actor, survivor):
        raise ApplicationError(_("未找到。"), code="not_found", status_code=404)
    identities_attach(
        member=survivor,
        identities=identities,
        known={(r.kind, r.app_id, r.value) for r in rows},
        actor=actor.label,
    )
    if not survivor.phone_hash:
        phone = next((i.plain for i in identities if i.kind == IdentityKind.PHONE), None)
        if phone:
            _phone_apply(survivor, phone)
            survivor.save(update_fields=["phone_encrypted", "phone_hash", "phone_masked"])
    member_update(actor=actor, member=survivor, profile={**_gaps(survivor, defaults), **profile})
    return survivor, outcome


def member_upsert(
    *, actor: Actor, identities: list[dict], profile: dict | None = None,
    defaults: dict | None = None,
) -> tuple[Member, str]:
    """Find the member any of ``identities`` points at and update them, create one when none
    does, or merge several into the oldest.  Returns the member and
    ``"created" | "updated" | "merged"``.  ``profile`` overwrites; ``defaults`` only fills
    fields the member has no value for (what an order says about its buyer).  A concurrent
    upsert of the same new identity makes one of them retry, and the retry finds the other's
    member."""
    normalized = normalize_identities(identities)
    for attempt in range(UPSERT_ATTEMPTS):
        try:
            with transaction.atomic():
                return _resolve(actor=actor, identities=normalized, profile=profile or {},
                                defaults=defaults or {})
        except IntegrityError:
            if attempt == UPSERT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def member_update(*, actor: Actor, member: Member, profile: dict[str, Any]) -> Member:
    changed = _profile_apply(member, profile)
    if changed:
        member.save(
            update_fields=[*changed, "consent_updated_at", "updated_at"]
            if "marketing_consent" in changed
            else [*changed, "updated_at"]
        )
        data = {
            field: str(getattr(member, field))
            for field in changed
            if field not in ("store", "guide")
        }
        timeline_add(
            member=member,
            kind=TimelineEvent.Kind.UPDATED,
            actor=actor.label,
            data={"changed": changed, "values": data},
        )
        signals.members_changed.send(sender=Member, tenant_id=member.tenant_id,
                                     member_ids=[member.pk])
        transaction.on_commit(
            lambda: signals.member_updated.send(
                sender=Member, tenant_id=member.tenant_id, member_id=member.pk, changed=changed
            )
        )
    return member


def member_phone_reveal(*, actor: Actor, member: Member, ip: str | None = None) -> str:
    """The full phone number, for roles that may see personal data; every view is audited."""
    if not actor.can("pii:read"):
        raise ApplicationError(_("当前角色无权查看完整手机号。"), code="permission_denied",
                               status_code=403)
    audit_record(actor=actor, action="member.phone_viewed", target=member, ip=ip)
    return crypto.decrypt(member.phone_encrypted) if member.phone_encrypted else ""
