"""Referral campaigns: attribution (first touch, known members, self-invites, loops, the cap,
the velocity hold), rewards on follow, registration and first purchase given once each,
milestones, the leaderboard, and the API's tenant isolation."""

from datetime import timedelta

import pytest
from django.http import Http404
from django.test import RequestFactory
from django.utils import timezone

from campaigns.referrals.models import ReferralAttribution, ReferralGrant
from campaigns.referrals.services import (
    referral_attribution_review,
    referral_campaign_save,
    referral_progress,
)
from campaigns.referrals.views import invite_landing
from members.services import member_merge, member_upsert, order_ingest
from scrm.tenancy import tenant_scope
from tags.models import MemberTag
from tests.conftest import client_for
from tests.referrals.conftest import (
    attributions,
    campaign,
    coupon_template,
    coupons_of,
    days,
    entries_of,
    invite,
    openid_of,
    person,
    points_of,
    scan,
    tag,
)

REFERRALS = "/api/v1/referrals/"


def follow_rewards(actor):
    return [
        {"event": "follow", "beneficiary": "inviter", "kind": "points",
         "params": {"points": 50, "reason": "邀请好友"}},
        {"event": "follow", "beneficiary": "invitee", "kind": "coupon",
         "params": {"template": coupon_template(actor).code}},
    ]


def order(actor, member, order_no: str, amount_fen: int = 19900):
    with tenant_scope(actor.tenant):
        return order_ingest(actor=actor, data={
            "order_no": order_no, "channel": "miniapp", "paid_at": timezone.now(),
            "amount_fen": amount_fen,
            "buyer": {"identities": [openid_of(member)]},
            "lines": [{"sku": "S1", "product": "精华", "quantity": 1,
                       "price_fen": amount_fen}]})


def test_a_follow_rewards_the_inviter_and_the_invitee_once(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    inviter, newcomer = person(actor, "王芳"), person(actor)
    their_invite = invite(actor, referral, inviter)

    attribution = scan(actor, their_invite, newcomer)
    assert (attribution.status, attribution.reason) == ("attributed", "")
    assert attribution.successful_at is not None  # the follow is this campaign's success
    assert (points_of(inviter), coupons_of(newcomer)) == (50, ["welcome"])

    # The same person scanning again, and the events replayed, give nothing more.
    again = scan(actor, their_invite, newcomer, new=False, followed=False)
    assert (again.status, again.reason) == ("refused", "already_attributed")
    with tenant_scope(tenant):
        referral_progress(member_ids=[newcomer.pk])
        assert ReferralGrant.objects.filter(outcome="granted").count() == 2
    assert (points_of(inviter), entries_of(inviter), coupons_of(newcomer)) == (50, 1, ["welcome"])
    assert (coupons_of(inviter), points_of(newcomer)) == ([], 0)


def test_registration_is_rewarded_once_when_the_invitee_gives_a_phone(
        actor, tenant, django_capture_on_commit_callbacks):
    referral = campaign(actor, success_event="registration", rewards=[
        {"event": "registration", "beneficiary": "inviter", "kind": "points",
         "params": {"points": 100}},
        {"event": "registration", "beneficiary": "invitee", "kind": "points",
         "params": {"points": 20}}])
    inviter, newcomer = person(actor), person(actor)
    attribution = scan(actor, invite(actor, referral, inviter), newcomer)
    assert attribution.successful_at is None  # followed, not registered yet
    assert points_of(inviter) == 0

    openid = openid_of(newcomer)
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(tenant):
        member_upsert(actor=actor, identities=[openid, {"kind": "phone",
                                                         "value": "13900139000"}])
    assert (points_of(inviter), points_of(newcomer)) == (100, 20)
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(tenant):
        member_upsert(actor=actor, identities=[openid, {"kind": "phone",
                                                         "value": "13900139001"}])
        referral_progress(member_ids=[newcomer.pk])
        attribution.refresh_from_db()
    assert (points_of(inviter), entries_of(inviter), points_of(newcomer)) == (100, 1, 20)
    assert None not in (attribution.registered_at, attribution.successful_at)


def test_the_first_purchase_is_rewarded_once_and_counts_its_amount(
        actor, tenant, django_capture_on_commit_callbacks):
    referral = campaign(actor, rewards=[
        {"event": "first_purchase", "beneficiary": "inviter", "kind": "points",
         "params": {"points": 300}}])
    inviter, newcomer = person(actor), person(actor)
    scan(actor, invite(actor, referral, inviter), newcomer)
    with django_capture_on_commit_callbacks(execute=True):
        order(actor, newcomer, "M1", 25800)
    assert points_of(inviter) == 300
    with django_capture_on_commit_callbacks(execute=True):
        order(actor, newcomer, "M2", 9900)
    with tenant_scope(tenant):
        referral_progress(member_ids=[newcomer.pk])
        attribution = ReferralAttribution.objects.get(status="attributed")
    assert (points_of(inviter), entries_of(inviter)) == (300, 1)
    assert attribution.first_purchase_fen == 25800


def test_a_purchase_after_the_conversion_period_is_not_rewarded(
        actor, tenant, django_capture_on_commit_callbacks):
    referral = campaign(actor, conversion_days=7, rewards=[
        {"event": "first_purchase", "beneficiary": "inviter", "kind": "points",
         "params": {"points": 300}}])
    inviter, newcomer = person(actor), person(actor)
    scan(actor, invite(actor, referral, inviter), newcomer, at=days(-8))
    with django_capture_on_commit_callbacks(execute=True):
        order(actor, newcomer, "LATE")
    assert points_of(inviter) == 0


def test_the_third_successful_invite_earns_the_milestone_coupon_once(actor, tenant):
    bonus = coupon_template(actor, code="koc3", name="三人成团券")
    referral = campaign(actor, rewards=[
        {"event": "follow", "beneficiary": "inviter", "kind": "points", "params": {"points": 10}},
        {"event": "milestone", "beneficiary": "inviter", "threshold": 3, "kind": "coupon",
         "params": {"template": bonus.code}}])
    inviter = person(actor)
    their_invite = invite(actor, referral, inviter)
    for count in range(1, 5):
        scan(actor, their_invite, person(actor))
        assert coupons_of(inviter) == ([] if count < 3 else ["koc3"]), count
    assert points_of(inviter) == 40


def test_a_tag_reward_tags_the_invitee(actor, tenant):
    newcomers = tag(actor)
    referral = campaign(actor, rewards=[{"event": "follow", "beneficiary": "invitee",
                                         "kind": "tag", "params": {"tag": newcomers.pk}}])
    newcomer = person(actor)
    scan(actor, invite(actor, referral, person(actor)), newcomer)
    with tenant_scope(tenant):
        assert MemberTag.objects.filter(member=newcomer, tag=newcomers).exists()


def test_inviting_oneself_is_refused(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    inviter = person(actor)
    attribution = scan(actor, invite(actor, referral, inviter), inviter)
    assert (attribution.status, attribution.reason) == ("refused", "self_invite")
    assert (points_of(inviter), coupons_of(inviter)) == (0, [])


def test_a_known_member_or_an_existing_follower_is_no_new_invitee(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    inviter, regular, follower = person(actor), person(actor), person(actor)
    their_invite = invite(actor, referral, inviter)
    known = scan(actor, their_invite, regular, new=False)
    # A SCAN (already following) is not new, even for a member this scan made.
    following = scan(actor, their_invite, follower, new=True, followed=False)
    assert [(a.status, a.reason) for a in (known, following)] == [
        ("refused", "known_member"), ("refused", "known_member")]
    assert (points_of(inviter), coupons_of(regular), coupons_of(follower)) == (0, [], [])


def test_the_inviter_cap_refuses_the_rest(actor, tenant):
    referral = campaign(actor, inviter_cap=2, rewards=follow_rewards(actor))
    inviter = person(actor)
    their_invite = invite(actor, referral, inviter)
    newcomers = [person(actor) for _i in range(3)]
    outcomes = [scan(actor, their_invite, newcomer) for newcomer in newcomers]
    assert [(a.status, a.reason) for a in outcomes] == [
        ("attributed", ""), ("attributed", ""), ("refused", "cap_reached")]
    assert points_of(inviter) == 100
    assert coupons_of(newcomers[2]) == []


def test_too_many_invites_in_an_hour_are_held_for_review(actor, tenant):
    referral = campaign(actor, velocity_per_hour=2, rewards=follow_rewards(actor))
    inviter = person(actor)
    their_invite = invite(actor, referral, inviter)
    now = timezone.now()
    newcomers = [person(actor) for _i in range(4)]
    outcomes = [scan(actor, their_invite, newcomer, at=now + timedelta(minutes=i))
                for i, newcomer in enumerate(newcomers)]
    assert [(a.status, a.reason) for a in outcomes] == [
        ("attributed", ""), ("attributed", ""), ("held", "velocity"), ("held", "velocity")]
    assert points_of(inviter) == 100
    assert coupons_of(newcomers[2]) == []
    # An hour later the inviter is welcome again.
    later = scan(actor, their_invite, person(actor), at=now + timedelta(minutes=70))
    assert later.status == "attributed"

    with tenant_scope(tenant):
        approved = referral_attribution_review(actor=actor, attribution=outcomes[2],
                                               approve=True)
        rejected = referral_attribution_review(actor=actor, attribution=outcomes[3],
                                               approve=False)
    assert (approved.status, rejected.status, rejected.reason) == (
        "attributed", "rejected", "review_rejected")
    assert points_of(inviter) == 200
    assert (coupons_of(newcomers[2]), coupons_of(newcomers[3])) == (["welcome"], [])


def test_a_referral_loop_is_refused(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    first, second = person(actor), person(actor)
    scan(actor, invite(actor, referral, first), second)
    back = scan(actor, invite(actor, referral, second), first)
    assert (back.status, back.reason) == ("refused", "loop")
    third = person(actor)
    scan(actor, invite(actor, referral, second), third)
    around = scan(actor, invite(actor, referral, third), first)  # first → second → third → first
    assert (around.status, around.reason) == ("refused", "loop")


def test_the_first_touch_wins(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    early, late, newcomer = person(actor), person(actor), person(actor)
    scan(actor, invite(actor, referral, early), newcomer)
    second = scan(actor, invite(actor, referral, late), newcomer, new=True)
    assert (second.status, second.reason) == ("refused", "already_attributed")
    assert (points_of(early), points_of(late)) == (50, 0)
    assert attributions(tenant) == [(early.pk, newcomer.pk, "attributed", ""),
                                    (late.pk, newcomer.pk, "refused", "already_attributed")]


def test_outside_the_campaign_window_nothing_is_attributed(actor, tenant):
    referral = campaign(actor, starts_at=days(-10), ends_at=days(-1),
                        rewards=follow_rewards(actor))
    inviter = person(actor)
    with tenant_scope(tenant):
        referral_campaign_save(actor=actor, campaign=referral, changes={"ends_at": days(5)})
    their_invite = invite(actor, referral, inviter)
    with tenant_scope(tenant):
        referral_campaign_save(actor=actor, campaign=referral, changes={"ends_at": days(-1)})
    late = scan(actor, their_invite, person(actor))
    assert (late.status, late.reason) == ("refused", "campaign_inactive")


def test_an_invitee_merged_into_an_older_member_lapses(actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    regular = person(actor, phone="13700137000")
    newcomer = person(actor)
    scan(actor, invite(actor, referral, person(actor)), newcomer)
    with tenant_scope(tenant):
        member_merge(actor=actor, survivor=regular, merged=newcomer, reason="manual")
        attribution = ReferralAttribution.objects.get()
    assert (attribution.status, attribution.reason, attribution.invitee_id) == (
        "invalidated", "merged_into_known", regular.pk)


def test_the_leaderboard_ranks_inviters_by_successes_then_by_gmv(
        api_client, actor, tenant, django_capture_on_commit_callbacks):
    referral = campaign(actor, rewards=follow_rewards(actor))
    koc, second, third = person(actor, "甲"), person(actor, "乙"), person(actor, "丙")
    invitees = {}
    for inviter, count in ((second, 2), (koc, 3), (third, 1)):
        invitees[inviter.pk] = [person(actor) for _i in range(count)]
        for newcomer in invitees[inviter.pk]:
            scan(actor, invite(actor, referral, inviter), newcomer)
    with django_capture_on_commit_callbacks(execute=True):
        order(actor, invitees[third.pk][0], "G1", 90000)
        order(actor, invitees[second.pk][0], "G2", 10000)

    response = api_client.get(f"{REFERRALS}{referral.pk}/leaderboard/")
    assert response.status_code == 200
    assert [(row["rank"], row["member"]["name"], row["successes"], row["gmv_fen"])
            for row in response.json()] == [(1, "甲", 3, 0), (2, "乙", 2, 10000),
                                            (3, "丙", 1, 90000)]
    by_gmv = api_client.get(f"{REFERRALS}{referral.pk}/leaderboard/", {"by": "gmv"}).json()
    assert [row["member"]["name"] for row in by_gmv] == ["丙", "乙"]
    detail = api_client.get(f"{REFERRALS}{referral.pk}/").json()
    assert detail["stats"]["successes"] == 6
    assert (detail["stats"]["buyers"], detail["stats"]["gmv_fen"]) == (2, 100000)


def test_the_api_creates_a_campaign_with_rewards_and_refuses_bad_ones(api_client, actor,
                                                                       tenant):
    template = coupon_template(actor)
    body = {"name": "春节裂变", "inviter_cap": 20, "velocity_per_hour": 10,
            "rewards": [{"event": "follow", "beneficiary": "invitee", "kind": "coupon",
                         "params": {"template": template.code}},
                        {"event": "milestone", "beneficiary": "inviter", "threshold": 3,
                         "kind": "points", "params": {"points": 500}}]}
    response = api_client.post(REFERRALS, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert [(r["event"], r["kind"], r["threshold"]) for r in created["rewards"]] == [
        ("follow", "coupon", 0), ("milestone", "points", 3)]
    assert created["stats"]["attributions"]["attributed"] == 0

    bad = [
        {"event": "milestone", "beneficiary": "invitee", "threshold": 3, "kind": "points",
         "params": {"points": 1}},
        {"event": "follow", "beneficiary": "inviter", "kind": "coupon",
         "params": {"template": "nope"}},
        {"event": "follow", "beneficiary": "inviter", "kind": "points", "params": {"points": 0}},
    ]
    for reward in bad:
        response = api_client.post(REFERRALS, {"name": "坏的", "rewards": [reward]},
                                   format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_reward"), reward
    with tenant_scope(tenant):
        assert ReferralAttribution.objects.count() == 0
    assert [c["name"] for c in api_client.get(REFERRALS).json()["results"]] == ["春节裂变"]

    patched = api_client.patch(f"{REFERRALS}{created['id']}/", {"rewards": []}, format="json")
    assert (patched.status_code, patched.json()["rewards"]) == (200, [])


def test_a_partner_gets_a_members_invite_once_with_its_link(actor, tenant, settings):
    settings.PUBLIC_BASE_URL = "https://scrm.example.com"
    referral = campaign(actor)
    inviter = person(actor)
    partner = client_for(tenant, scopes=["members:write"])
    first = partner.post(f"{REFERRALS}{referral.pk}/invites/", {"member": inviter.pk},
                         format="json")
    again = partner.post(f"{REFERRALS}{referral.pk}/invites/", {"member": inviter.pk},
                         format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["code"] == again.json()["code"]
    assert first.json()["link"] == f"https://scrm.example.com/r/{first.json()['code']}/"
    assert first.json()["qr"] is None
    assert partner.get(f"{REFERRALS}{referral.pk}/").status_code == 403  # campaigns:read


def test_without_a_connected_account_no_qr_can_be_made(api_client, actor, tenant):
    referral = campaign(actor)
    response = api_client.post(f"{REFERRALS}{referral.pk}/invites/",
                               {"member": person(actor).pk, "qr": True}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "qr_unavailable")


def test_the_invite_link_records_the_click_and_sends_to_the_landing_page(actor, tenant, client):
    referral = campaign(actor, landing_url="https://h5.example.com/join?from=poster")
    their_invite = invite(actor, referral, person(actor, "王芳"))
    response = client.get(f"/r/{their_invite.code}/")
    assert response.status_code == 302
    assert response["Location"] == (f"https://h5.example.com/join?from=poster"
                                    f"&ref={their_invite.code}")
    for unknown in ("0-aaaaaaaaaaaaaaaa", f"{their_invite.code[:-1]}a", "not-a-code"):
        # The view itself (the 404 page is the dashboard's).
        with pytest.raises(Http404):
            invite_landing(RequestFactory().get(f"/r/{unknown}/"), unknown)
    with tenant_scope(tenant):
        their_invite.refresh_from_db()
    assert their_invite.clicks == 1


def test_held_attributions_are_listed_and_reviewed_through_the_api(api_client, actor, tenant):
    referral = campaign(actor, velocity_per_hour=1, rewards=follow_rewards(actor))
    inviter = person(actor)
    their_invite = invite(actor, referral, inviter)
    scan(actor, their_invite, person(actor))
    held = scan(actor, their_invite, person(actor))
    url = f"{REFERRALS}{referral.pk}/attributions/"
    listed = api_client.get(url, {"status": "held"}).json()["results"]
    assert [(a["id"], a["reason"]) for a in listed] == [(held.pk, "velocity")]
    response = api_client.post(f"{url}{held.pk}/review/", {"approve": True}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "attributed")
    again = api_client.post(f"{url}{held.pk}/review/", {"approve": True}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "not_held")
    assert points_of(inviter) == 100


@pytest.mark.parametrize("path", ["", "leaderboard/", "attributions/"])
def test_another_tenants_referrals_are_404(api_client, other_tenant, path):
    from scrm.access import ALL_SCOPES, Actor

    theirs = campaign(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))
    assert api_client.get(f"{REFERRALS}{theirs.pk}/{path}").status_code == 404
    if not path:
        assert api_client.patch(f"{REFERRALS}{theirs.pk}/", {"name": "x"},
                                format="json").status_code == 404
        assert api_client.post(f"{REFERRALS}{theirs.pk}/invites/", {"member": 1},
                               format="json").status_code == 404
        with tenant_scope(other_tenant):
            theirs.refresh_from_db()
        assert theirs.name == "老带新"


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_queries_do_not_grow_with_rows(api_client, actor, tenant):
    referral = campaign(actor, rewards=follow_rewards(actor))
    their_invite = invite(actor, referral, person(actor))
    scan(actor, their_invite, person(actor))
    urls = [REFERRALS, f"{REFERRALS}{referral.pk}/attributions/",
            f"{REFERRALS}{referral.pk}/leaderboard/"]
    api_client.get(REFERRALS)  # the key's first use writes its last use; later ones do not
    few = [_queries(api_client, url) for url in urls]
    for _i in range(3):
        campaign(actor, name="更多", rewards=[{"event": "follow", "beneficiary": "inviter",
                                             "kind": "points", "params": {"points": 1}}])
        scan(actor, invite(actor, referral, person(actor)), person(actor))
    assert [_queries(api_client, url) for url in urls] == few
