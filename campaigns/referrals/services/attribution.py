"""Attribution: who brought whom.

A person who follows the OA through an invite's QR code (the scene ``ref_<code>``) is the
inviter's invitee, if they are new: the first touch wins, and an identity already known (a
member before the scan, or someone already following) is no new invitee.  Refused, each
recorded with its reason: the campaign not running, inviting oneself, a loop (inviting one's
own inviter, at any depth), an invitee already attributed, a known member, the inviter's
cap.  Past ``velocity_per_hour`` attributions in the last hour, the rest are held for review.

Then the invitee's registration (a phone identity) and first purchase, within the
campaign's conversion period, are recorded once each (receivers and a periodic sweep call
``referral_progress``) and rewarded; the campaign's ``success_event`` makes the invite a
success, which counts for the leaderboard and the inviter's milestones.

Lock order, everywhere: the invite's row, then its attributions.  The invite's lock
serialises one inviter's attributions in a campaign, so the cap, the velocity limit and the
milestones are counted race-free; the first-touch rule is the database's (a partial unique
constraint), for invitees two inviters reach at once."""

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.referrals.models import (
    ReferralAttribution,
    ReferralCampaign,
    ReferralEvent,
    ReferralInvite,
)
from campaigns.referrals.services.common import member_current, system_actor
from campaigns.referrals.services.invites import scene_code
from campaigns.referrals.services.rewards import rewards_for_event, success_record
from members.models import IdentityKind, Member, MemberIdentity, Order
from members.services import timeline_add
from scrm.access import Actor
from scrm.api.errors import Conflict
from scrm.audit import audit_record

logger = logging.getLogger(__name__)

Status = ReferralAttribution.Status
Reason = ReferralAttribution.Reason
LIVE = (Status.ATTRIBUTED, Status.HELD)
LOOP_HOPS = 20
VELOCITY_WINDOW = timedelta(hours=1)
SWEEP_CHUNK = 500
SWEEP_GRACE = timedelta(days=2)  # events within the period that were noticed late
# When each event happened, on the attribution.
EVENT_FIELDS = {ReferralEvent.FOLLOW: "followed_at", ReferralEvent.REGISTRATION: "registered_at",
                ReferralEvent.FIRST_PURCHASE: "first_purchase_at"}


def referral_scan(*, code: str, member: Member, is_new_member: bool, at: datetime,
                  followed: bool = True) -> ReferralAttribution | None:
    """An invite's QR code was scanned: ``followed`` when the scan was a follow (subscribe),
    not when the person already followed (SCAN); ``is_new_member`` when the scan made the
    member.  ``code`` is the scene without ``ref_``.  None when no invite has the code."""
    invite = ReferralInvite.objects.filter(code=scene_code(code)).first()
    if invite is None:
        logger.info("referral scene ref_%s names no invite", code)
        return None
    return referral_attribute(invite=invite, invitee=member, is_new_member=is_new_member,
                              at=at, source=ReferralAttribution.Source.FOLLOW if followed
                              else ReferralAttribution.Source.SCAN)


def _invite_lock(invite_id: int) -> ReferralInvite:
    return (ReferralInvite.objects.select_for_update(of=("self",)).select_related("campaign")
            .get(pk=invite_id))


@transaction.atomic
def referral_attribute(*, invite: ReferralInvite, invitee: Member, is_new_member: bool,
                       at: datetime, source: str,
                       actor: Actor | None = None) -> ReferralAttribution:
    """Attribute ``invitee`` to the invite's inviter, hold it for review, or refuse it
    (recorded with the reason); an attributed follow is rewarded at once."""
    invite = _invite_lock(invite.pk)
    campaign = invite.campaign
    inviter = member_current(Member.objects.get(pk=invite.inviter_id))
    invitee = member_current(invitee)
    # Someone scanning while already following is not new to the brand, whatever our own
    # records say (a follower the sync has not reached yet).
    is_new = is_new_member and source == ReferralAttribution.Source.FOLLOW
    row = {"tenant_id": campaign.tenant_id, "campaign": campaign, "invite": invite,
           "inviter_id": inviter.pk, "invitee_id": invitee.pk, "source": source,
           "is_new_member": is_new, "occurred_at": at}
    reason = _refusal(campaign=campaign, inviter=inviter, invitee=invitee, is_new=is_new, at=at)
    if reason:
        return _refused(row, reason)
    held = _too_fast(campaign=campaign, inviter_id=inviter.pk, at=at)
    try:
        with transaction.atomic():
            attribution = ReferralAttribution.objects.create(
                **row, status=Status.HELD if held else Status.ATTRIBUTED,
                reason=Reason.VELOCITY if held else "",
                followed_at=at if source == ReferralAttribution.Source.FOLLOW else None)
    except IntegrityError:  # another inviter's invite reached them first, just now
        return _refused(row, Reason.ALREADY_ATTRIBUTED)
    timeline_add(member=invitee, kind="referral.attributed", actor="referral", occurred_at=at,
                 data={"campaign_id": campaign.pk, "campaign": campaign.name,
                       "inviter_id": inviter.pk, "status": attribution.status})
    events = [ReferralEvent.FOLLOW] if attribution.followed_at else []
    events += _conversions_record(attribution)
    if attribution.status == Status.ATTRIBUTED:
        _settle(actor=actor or system_actor(campaign.tenant_id), attribution=attribution,
                events=events)
    return attribution


def _refused(row: dict, reason: str) -> ReferralAttribution:
    logger.info("referral of member %s refused: %s", row["invitee_id"], reason)
    return ReferralAttribution.objects.create(**row, status=Status.REFUSED, reason=reason)


def _refusal(*, campaign: ReferralCampaign, inviter: Member, invitee: Member, is_new: bool,
             at: datetime) -> str:
    """Why the invitee cannot be attributed ("" when they can), the most telling first."""
    if not campaign.is_open(at):
        return Reason.CAMPAIGN_INACTIVE
    if invitee.pk == inviter.pk:
        return Reason.SELF_INVITE
    if invitee.pk in _ancestors(inviter.pk):
        return Reason.LOOP
    if ReferralAttribution.objects.filter(campaign=campaign, invitee_id=invitee.pk,
                                          status__in=LIVE).exists():
        return Reason.ALREADY_ATTRIBUTED
    if not is_new:
        return Reason.KNOWN_MEMBER
    if campaign.inviter_cap and ReferralAttribution.objects.filter(
            campaign=campaign, inviter_id=inviter.pk,
            status__in=LIVE).count() >= campaign.inviter_cap:
        return Reason.CAP_REACHED
    return ""


def _ancestors(member_id: int) -> set[int]:
    """Who invited this member, who invited them, and so on (in any campaign)."""
    found: set[int] = set()
    current = member_id
    for _hop in range(LOOP_HOPS):
        inviter = (ReferralAttribution.objects.filter(invitee_id=current, status__in=LIVE)
                   .order_by("occurred_at", "pk").values_list("inviter_id", flat=True).first())
        if inviter is None or inviter in found:
            break
        found.add(inviter)
        current = inviter
    return found


def _too_fast(*, campaign: ReferralCampaign, inviter_id: int, at: datetime) -> bool:
    if not campaign.velocity_per_hour:
        return False
    recent = ReferralAttribution.objects.filter(
        campaign=campaign, inviter_id=inviter_id, status=Status.ATTRIBUTED,
        occurred_at__gt=at - VELOCITY_WINDOW, occurred_at__lte=at).count()
    return recent >= campaign.velocity_per_hour


# Registration and first purchase


def _conversions_record(attribution: ReferralAttribution) -> list[str]:
    """Record the invitee's registration (their first phone identity) and first purchase,
    when within the conversion period and not recorded yet; the events recorded now."""
    deadline = attribution.occurred_at + timedelta(days=attribution.campaign.conversion_days)
    recorded = []
    if attribution.registered_at is None:
        phone_at = MemberIdentity.objects.filter(
            member_id=attribution.invitee_id, kind=IdentityKind.PHONE).aggregate(
            at=Min("created_at"))["at"]
        if phone_at is not None and phone_at <= deadline:
            attribution.registered_at = max(phone_at, attribution.occurred_at)
            recorded.append(ReferralEvent.REGISTRATION)
    if attribution.first_purchase_at is None:
        first = (Order.objects.filter(member_id=attribution.invitee_id).order_by("paid_at", "pk")
                 .values_list("paid_at", "amount_fen").first())
        if first is not None and first[0] <= deadline:
            attribution.first_purchase_at, attribution.first_purchase_fen = first
            recorded.append(ReferralEvent.FIRST_PURCHASE)
    if recorded:
        attribution.save(update_fields=["registered_at", "first_purchase_at",
                                        "first_purchase_fen"])
    return recorded


def _settle(*, actor: Actor, attribution: ReferralAttribution, events: list[str]) -> None:
    """Reward ``events`` of an attributed invitee, and mark the invite a success once the
    campaign's success event has happened."""
    for event in events:
        rewards_for_event(actor=actor, attribution=attribution, event=event)
    success_at = getattr(attribution, EVENT_FIELDS[attribution.campaign.success_event])
    if success_at is not None and attribution.successful_at is None:
        success_record(actor=actor, attribution=attribution, at=success_at)


def referral_progress(*, member_ids: list[int], actor: Actor | None = None) -> int:
    """Record and reward what these members did as invitees (registered, bought for the
    first time); safe to call any number of times.  Returns the events recorded."""
    pending = list(ReferralAttribution.objects.filter(
        invitee_id__in=member_ids, status__in=LIVE).filter(
        Q(registered_at__isnull=True) | Q(first_purchase_at__isnull=True)).values_list(
        "pk", "invite_id"))
    return sum(_progress_one(attribution_id, invite_id, actor)
               for attribution_id, invite_id in pending)


@transaction.atomic
def _progress_one(attribution_id: int, invite_id: int, actor: Actor | None) -> int:
    _invite_lock(invite_id)
    attribution = (ReferralAttribution.objects.select_for_update(of=("self",))
                   .select_related("campaign").get(pk=attribution_id))
    if attribution.status not in LIVE:
        return 0
    events = _conversions_record(attribution)
    if events and attribution.status == Status.ATTRIBUTED:
        _settle(actor=actor or system_actor(attribution.tenant_id), attribution=attribution,
                events=events)
    return len(events)


# Review of held attributions


@transaction.atomic
def referral_attribution_review(*, actor: Actor, attribution: ReferralAttribution,
                                approve: bool, note: str = "") -> ReferralAttribution:
    """Approve a held attribution (it is rewarded for what the invitee did meanwhile) or
    reject it.  409 ``not_held`` for any other."""
    _invite_lock(attribution.invite_id)
    attribution = (ReferralAttribution.objects.select_for_update(of=("self",))
                   .select_related("campaign").get(pk=attribution.pk))
    if attribution.status != Status.HELD:
        raise Conflict(_("只有待审核的归因可以审核。"), code="not_held")
    attribution.status = Status.ATTRIBUTED if approve else Status.REJECTED
    attribution.reason = "" if approve else Reason.REVIEW_REJECTED
    attribution.reviewed_by, attribution.reviewed_at = actor.label[:64], timezone.now()
    attribution.note = note[:255]
    attribution.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at", "note"])
    if approve:
        _conversions_record(attribution)
        _settle(actor=actor, attribution=attribution,
                events=[event for event, field in EVENT_FIELDS.items()
                        if getattr(attribution, field) is not None])
    audit_record(actor=actor, action="referrals.review", target=attribution,
                 data={"approve": approve, "note": note[:255]})
    return attribution


def referrals_sweep(*, now: datetime | None = None) -> int:
    """The registrations and first purchases the events did not bring (a phone attached
    without an event, a bulk import): every live attribution still in its conversion
    period whose invitee has a phone or an order is brought up to date.  Periodic."""
    now = now or timezone.now()
    recorded = 0
    for campaign in ReferralCampaign.objects.all():
        phone = MemberIdentity.objects.filter(member_id=OuterRef("invitee_id"),
                                              kind=IdentityKind.PHONE)
        order = Order.objects.filter(member_id=OuterRef("invitee_id"))
        invitees = list(ReferralAttribution.objects.filter(
            campaign=campaign, status__in=LIVE,
            occurred_at__gte=now - timedelta(days=campaign.conversion_days) - SWEEP_GRACE).filter(
            (Q(registered_at__isnull=True) & Exists(phone))
            | (Q(first_purchase_at__isnull=True) & Exists(order))).values_list(
            "invitee_id", flat=True))
        for start in range(0, len(invitees), SWEEP_CHUNK):
            recorded += referral_progress(member_ids=invitees[start:start + SWEEP_CHUNK])
    return recorded
