"""Consent per purpose: an append-only history with source and time, the member's current
state derived from it, and campaigns that skip members without marketing consent."""

from members.models import Member, MemberConsent
from members.services import member_update
from members.services.consent import consent_record
from scrm.tenancy import tenant_scope
from tests.campaigns.test_campaigns import make, people, run_now, statuses
from tests.conftest import client_for


def consents_url(member) -> str:
    return f"/api/v1/members/{member.pk}/consents/"


def test_recording_consent_keeps_history_and_current_state(owner_api, wang, tenant):
    withdrawn = owner_api.post(consents_url(wang), {"purpose": "marketing", "granted": False},
                               format="json")
    assert withdrawn.status_code == 201, withdrawn.json()
    owner_api.post(consents_url(wang), {"purpose": "profiling", "granted": False,
                                        "source": "wechat"}, format="json")
    body = owner_api.get(consents_url(wang)).json()
    assert body["current"]["marketing"] is False
    assert body["current"]["profiling"] is False
    # Newest first: the profiling withdrawal, the marketing withdrawal, then the consent given
    # when the member was created.
    assert [(row["purpose"], row["granted"], row["source"]) for row in body["history"]] == [
        ("profiling", False, "wechat"), ("marketing", False, "api"),
        ("marketing", True, "dashboard")]
    assert all(row["created_at"] and row["actor"] for row in body["history"])
    with tenant_scope(tenant):
        member = Member.objects.get(pk=wang.pk)
    assert (member.marketing_consent, member.profiling_consent) == (False, False)


def test_a_profile_update_of_marketing_consent_is_in_the_history(actor, wang, tenant):
    with tenant_scope(tenant):
        member_update(actor=actor, member=wang, profile={"marketing_consent": False})
        rows = list(MemberConsent.objects.filter(member=wang).order_by("id")
                    .values_list("purpose", "granted"))
    assert rows == [("marketing", True), ("marketing", False)]


def test_unknown_purposes_are_refused_and_nothing_is_written(owner_api, wang, tenant):
    response = owner_api.post(consents_url(wang), {"purpose": "sharing", "granted": True},
                              format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "purpose" in response.json()["errors"]
    with tenant_scope(tenant):
        assert MemberConsent.objects.filter(member=wang).count() == 1


def test_reading_needs_members_read_and_writing_members_write(tenant, wang):
    reader = client_for(tenant, scopes=["members:read"])
    assert reader.get(consents_url(wang)).status_code == 200
    refused = reader.post(consents_url(wang), {"purpose": "marketing", "granted": False},
                          format="json")
    assert refused.status_code == 403
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).marketing_consent is True


def test_other_tenants_cannot_see_or_record_consent(other_api_client, wang, tenant):
    assert other_api_client.get(consents_url(wang)).status_code == 404
    response = other_api_client.post(consents_url(wang), {"purpose": "marketing",
                                                          "granted": False}, format="json")
    assert response.status_code == 404
    with tenant_scope(tenant):
        assert MemberConsent.objects.filter(member=wang).count() == 1


def test_the_member_page_shows_and_records_consent(owner, wang, tenant):
    from django.test import Client

    client = Client()
    client.force_login(owner.user)
    response = client.post(f"/members/{wang.pk}/consents/", {"purpose": "profiling",
                                                             "granted": "0"})
    assert response.status_code == 302
    page = client.get(f"/members/{wang.pk}/").content.decode()
    for text in ("授权记录", "用户画像", "撤回"):
        assert text in page
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).profiling_consent is False
        assert MemberConsent.objects.filter(member=wang, purpose="profiling",
                                            source="dashboard", granted=False).count() == 1


def test_a_campaign_skips_members_who_withdrew_marketing_consent(actor, tenant):
    members = people(actor, 4)
    with tenant_scope(tenant):
        consent_record(actor=actor, member=members[0], purpose="marketing", granted=False)
    campaign = make(actor)
    run_now(actor, campaign, chunk=10)
    assert statuses(tenant) == {"sent": 3, "no_consent": 1}
    with tenant_scope(tenant):
        from campaigns.models import Delivery

        assert Delivery.objects.get(status="no_consent").member_id == members[0].pk


def test_the_admin_shows_the_history_read_only(owner, wang, tenant):
    from django.test import Client

    client = Client()
    client.force_login(owner.user)
    with tenant_scope(tenant):
        row = MemberConsent.objects.get(member=wang)
    assert client.get("/admin/members/memberconsent/").status_code == 200
    assert client.get(f"/admin/members/memberconsent/{row.pk}/change/").status_code == 200
    assert client.get("/admin/members/memberconsent/add/").status_code == 403
    assert client.post(f"/admin/members/memberconsent/{row.pk}/delete/",
                       {"post": "yes"}).status_code == 403
    with tenant_scope(tenant):
        assert MemberConsent.objects.filter(pk=row.pk).exists()
