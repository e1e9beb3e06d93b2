"""Referrals and lotteries in the admin: pages render, edits go through the services (and
show their refusals on the form), held attributions are approved by an action, other
tenants' rows are 404."""

import pytest
from django.contrib import admin
from django.utils import timezone

from campaigns.referrals.models import ReferralCampaign, ReferralReward
from scrm.access import ALL_SCOPES, Actor
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tests.factories import UserFactory
from tests.referrals.conftest import campaign, invite, person, points_of, scan
from tests.referrals.test_lottery import draw, lottery
from tests.scrm.test_admin import change_form_data, sign_in

CAMPAIGNS = "/admin/referrals/referralcampaign/"
ATTRIBUTIONS = "/admin/referrals/referralattribution/"


def form_data(page, **changes) -> dict:
    data = change_form_data(page, **changes)
    starts = timezone.localtime(data.pop("starts_at"))  # a date and a time field in the admin
    return {**data, "starts_at_0": f"{starts:%Y-%m-%d}", "starts_at_1": f"{starts:%H:%M:%S}"}


@pytest.fixture
def seeded(actor):
    referral = campaign(actor, velocity_per_hour=1, rewards=[
        {"event": "follow", "beneficiary": "inviter", "kind": "points", "params": {"points": 5}}])
    inviter = person(actor, "王芳")
    their_invite = invite(actor, referral, inviter)
    scan(actor, their_invite, person(actor))
    held = scan(actor, their_invite, person(actor))
    lot = lottery(actor)
    draw(actor, lot, person(actor))
    return referral, held, inviter


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_every_referrals_admin_page_renders(client, tenant, seeded, who):
    if who == "owner":
        sign_in(client, tenant)
    else:
        client.force_login(UserFactory(is_superuser=True))
    for model in admin.site._registry:
        if model._meta.app_label != "referrals":
            continue
        url = f"/admin/referrals/{model._meta.model_name}/"
        listing = client.get(url)
        assert listing.status_code == 200, url
        objects = list(listing.context["cl"].result_list)
        assert objects, url
        assert client.get(f"{url}{objects[0].pk}/change/").status_code == 200, url
        assert client.get(f"{url}add/").status_code in (200, 403), url


def test_a_campaign_edited_in_the_admin_is_saved_through_the_service(client, tenant, seeded):
    referral, _held, _inviter = seeded
    sign_in(client, tenant)
    page = client.get(f"{CAMPAIGNS}{referral.pk}/change/")
    data = form_data(page, name="老带新·第二季", **{"rewards-0-params": '{"points": 8}'})
    response = client.post(f"{CAMPAIGNS}{referral.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(tenant):
        assert ReferralCampaign.objects.get().name == "老带新·第二季"
        assert list(ReferralReward.objects.values_list("kind", "params")) == [
            ("points", {"points": 8, "reason": "活动赠送"})]
        assert AuditEntry.objects.filter(action="referrals.update").exists()

    page = client.get(f"{CAMPAIGNS}{referral.pk}/change/")  # the rules were saved anew
    refused = client.post(f"{CAMPAIGNS}{referral.pk}/change/", form_data(
        page, **{"rewards-0-params": '{"points": 0}'}))
    assert refused.status_code == 200  # the form again, with the service's reason
    assert "1 到 1000000" in refused.content.decode()
    with tenant_scope(tenant):
        assert ReferralReward.objects.get().params["points"] == 8


def test_a_held_attribution_approved_in_the_admin_is_rewarded(client, tenant, seeded):
    _referral, held, inviter = seeded
    sign_in(client, tenant)
    assert points_of(inviter) == 5
    response = client.post(ATTRIBUTIONS, {"action": "approve", "_selected_action": [held.pk]})
    assert response.status_code == 302
    with tenant_scope(tenant):
        held.refresh_from_db()
    assert (held.status, points_of(inviter)) == ("attributed", 10)


def test_another_tenants_campaign_is_404_in_the_admin(client, tenant, other_tenant):
    theirs = campaign(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))
    sign_in(client, tenant)
    assert client.get(f"{CAMPAIGNS}{theirs.pk}/change/").status_code == 404
