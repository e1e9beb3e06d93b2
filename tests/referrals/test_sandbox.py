"""Invite QR codes end to end, against the WeChat sandbox over real HTTP: the API makes the
QR code, a new person scans it, the signed callback comes in, and the follow is attributed
and rewarded."""

from datetime import timedelta

from django.utils import timezone

from campaigns.referrals.models import (
    ReferralAttribution,
    ReferralClick,
    ReferralGrant,
    ReferralInvite,
)
from campaigns.referrals.services import referral_invite_get, referral_invite_qr
from integrations.models import ChannelCode, ChannelEvent, Follower
from scrm.tenancy import tenant_scope
from tests.referrals.conftest import campaign, coupon_template, coupons_of, person, points_of

REFERRALS = "/api/v1/referrals/"


def rewarding_campaign(actor, **changes):
    return campaign(actor, rewards=[
        {"event": "follow", "beneficiary": "inviter", "kind": "points",
         "params": {"points": 50, "reason": "邀请好友关注"}},
        {"event": "follow", "beneficiary": "invitee", "kind": "coupon",
         "params": {"template": coupon_template(actor).code}}], **changes)


def test_a_new_person_scanning_the_invite_qr_is_attributed_and_both_are_rewarded(
        sandbox, oa_app, api_client, actor, tenant, deliver):
    referral = rewarding_campaign(actor, oa_appid=oa_app.appid)
    inviter = person(actor, "王芳")
    response = api_client.post(f"{REFERRALS}{referral.pk}/invites/",
                               {"member": inviter.pk, "qr": True}, format="json")
    assert response.status_code == 201, response.json()
    qr = response.json()["qr"]
    assert (bool(qr["ticket"]), qr["is_permanent"]) == (True, False)
    assert timezone.now() + timedelta(days=29) < timezone.datetime.fromisoformat(
        qr["expires_at"]) <= timezone.now() + timedelta(days=30, minutes=1)

    scanned = sandbox.simulate_mp("scan", ticket=qr["ticket"])
    deliveries = deliver()
    assert [d.status for d in deliveries] == [200]

    with tenant_scope(tenant):
        invitee = Follower.objects.get(openid=scanned["openid"]).member
        attribution = ReferralAttribution.objects.get()
        assert (attribution.inviter_id, attribution.invitee_id, attribution.status,
                attribution.source, attribution.is_new_member) == (
            inviter.pk, invitee.pk, "attributed", "follow", True)
        assert attribution.successful_at is not None
        assert sorted(ReferralGrant.objects.values_list("beneficiary", "kind", "outcome")) == [
            ("invitee", "coupon", "granted"), ("inviter", "points", "granted")]
        # The channel code behind the QR counts the scan like any other (渠道活码).
        code = ChannelCode.objects.get()
        assert (code.channel, code.campaign, code.scene) == (
            "裂变", "老带新", f"ref_{response.json()['code']}")
        assert ChannelEvent.objects.get().is_new_member is True
    assert (points_of(inviter), coupons_of(invitee)) == (50, ["welcome"])

    # Asking again gives the same code and QR; the follower scanning again changes nothing.
    again = api_client.post(f"{REFERRALS}{referral.pk}/invites/",
                            {"member": inviter.pk, "qr": True}, format="json")
    assert (again.status_code, again.json()["qr"]["ticket"]) == (200, qr["ticket"])
    sandbox.simulate_mp("scan", ticket=qr["ticket"], openid=scanned["openid"])
    deliver()
    with tenant_scope(tenant):
        assert list(ReferralAttribution.objects.order_by("pk").values_list(
            "status", "reason")) == [("attributed", ""), ("refused", "already_attributed")]
    assert (points_of(inviter), coupons_of(invitee)) == (50, ["welcome"])


def test_an_expiring_temporary_qr_is_made_again_and_still_attributes(
        sandbox, oa_app, actor, tenant, deliver):
    referral = rewarding_campaign(actor)
    inviter = person(actor)
    with tenant_scope(tenant):
        invite, _created = referral_invite_get(actor=actor, campaign=referral, inviter=inviter)
        first = referral_invite_qr(actor=actor, invite=invite)
        same = referral_invite_qr(actor=actor, invite=invite)
        renewed = referral_invite_qr(actor=actor, invite=invite,
                                     now=timezone.now() + timedelta(days=29, hours=12))
        assert first.qr_ticket == same.qr_ticket != renewed.qr_ticket
        assert list(ChannelCode.objects.order_by("pk").values_list("scene", flat=True)) == [
            f"ref_{invite.code}", f"ref_{invite.code}_2"]
    sandbox.simulate_mp("scan", ticket=renewed.qr_ticket)
    deliver()
    with tenant_scope(tenant):
        assert ReferralAttribution.objects.get().status == "attributed"
    assert points_of(inviter) == 50


def test_the_landing_page_shows_the_inviters_qr_and_counts_the_click(
        sandbox, oa_app, actor, tenant, client):
    referral = rewarding_campaign(actor, description="邀请好友关注，双方各得好礼")
    inviter = person(actor, "王芳")
    with tenant_scope(tenant):
        invite, _created = referral_invite_get(actor=actor, campaign=referral, inviter=inviter)
    response = client.get(f"/r/{invite.code}/", HTTP_USER_AGENT="MicroMessenger/8.0")
    assert response.status_code == 200
    page = response.content.decode()
    assert "王* 邀请你一起参加" in page
    assert "/cgi-bin/showqrcode?ticket=" in page
    with tenant_scope(tenant):
        invite = ReferralInvite.objects.get()
        assert (invite.clicks, bool(invite.qr_ticket)) == (1, True)
        click = ReferralClick.objects.get()
    assert (click.user_agent, len(click.ip_hash)) == ("MicroMessenger/8.0", 32)
