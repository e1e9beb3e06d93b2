import itertools
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupon_template_save
from campaigns.referrals.models import ReferralAttribution, ReferralCampaign, ReferralInvite
from campaigns.referrals.services import (
    referral_campaign_save,
    referral_invite_get,
    referral_scan,
)
from members.models import Member
from members.services import member_upsert
from points.models import PointsAccount, PointsEntry
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tags.models import Tag, TagGroup

# The WeChat sandbox over real HTTP, as the integrations' tests use it.
from tests.integrations.conftest import deliver, oa_app, sandbox, sandbox_options  # noqa: F401

_people = itertools.count(1)


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def days(n: float) -> datetime:
    return timezone.now() + timedelta(days=n)


def person(actor: Actor, name: str = "", phone: str | None = None) -> Member:
    """A member known by a WeChat openid (and a phone when given)."""
    identities = [{"kind": "wechat_openid", "app_id": "wxtest", "value": f"o{next(_people):06d}"}]
    if phone:
        identities.append({"kind": "phone", "value": phone})
    with tenant_scope(actor.tenant):
        member, _outcome = member_upsert(actor=actor, identities=identities,
                                         profile={"name": name} if name else {})
    return member


def openid_of(member: Member) -> dict:
    with tenant_scope(member.tenant_id):
        value = member.identities.get(kind="wechat_openid").value
    return {"kind": "wechat_openid", "app_id": "wxtest", "value": value}


def coupon_template(actor: Actor, code: str = "welcome", **fields):
    values = {"code": code, "name": "新人券", "kind": "fixed", "amount_fen": 1000,
              "threshold_fen": 0, "validity": "relative", "valid_days": 30,
              "per_member_limit": 0, **fields}
    with tenant_scope(actor.tenant):
        return coupon_template_save(actor=actor, changes=values)


def tag(actor: Actor, name: str = "裂变新客") -> Tag:
    with tenant_scope(actor.tenant):
        return Tag.objects.create(group=TagGroup.objects.get_or_create(name="裂变")[0], name=name)


def campaign(actor: Actor, rewards: list[dict] | None = None, **changes) -> ReferralCampaign:
    with tenant_scope(actor.tenant):
        return referral_campaign_save(actor=actor, changes={"name": "老带新",
                                                            "starts_at": days(-1), **changes},
                                      rewards=rewards or [])


def invite(actor: Actor, referral: ReferralCampaign, inviter: Member) -> ReferralInvite:
    with tenant_scope(actor.tenant):
        return referral_invite_get(actor=actor, campaign=referral, inviter=inviter)[0]


def scan(actor: Actor, invite_: ReferralInvite, member: Member, *, new: bool = True,
         followed: bool = True, at: datetime | None = None) -> ReferralAttribution:
    with tenant_scope(actor.tenant):
        return referral_scan(code=invite_.code, member=member, is_new_member=new,
                             at=at or timezone.now(), followed=followed)


def points_of(member: Member) -> int:
    with tenant_scope(member.tenant_id):
        account = PointsAccount.objects.filter(member_id=member.pk).first()
    return account.balance if account else 0


def entries_of(member: Member) -> int:
    with tenant_scope(member.tenant_id):
        return PointsEntry.objects.filter(member_id=member.pk).count()


def coupons_of(member: Member) -> list[str]:
    with tenant_scope(member.tenant_id):
        return sorted(Coupon.objects.filter(member_id=member.pk).values_list(
            "template__code", flat=True))


def attributions(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(ReferralAttribution.objects.order_by("pk").values_list(
            "inviter_id", "invitee_id", "status", "reason"))
