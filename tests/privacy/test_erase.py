"""Erasure (PIPL deletion right): personal fields and identities go, orders, the points
ledger and coupons stay on an anonymous row; nothing finds the member again; idempotent;
owners only; audited."""

import pytest
from django.db.models import Sum
from django.test import Client

from campaigns.coupons.models import Coupon
from members.models import Member, MemberIdentity, MemberNote, Order, TimelineEvent
from members.selectors import member_list
from members.services import member_upsert
from points.models import PointsAccount, PointsEntry
from scrm.access import Actor
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag
from tags.services.segments import expression_members
from tests.conftest import client_for
from tests.privacy.conftest import PHONE


def erase_url(member) -> str:
    return f"/api/v1/members/{member.pk}/erase/"


def accounts(tenant, member) -> dict:
    with tenant_scope(tenant):
        return {
            "orders": list(Order.objects.filter(member=member).values_list("order_no",
                                                                             "amount_fen")),
            "ledger": PointsEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"],
            "balance": PointsAccount.objects.get(member=member).balance,
            "coupons": Coupon.objects.filter(member=member).count(),
        }


def test_erasure_removes_personal_data_and_keeps_the_accounts(owner_api, wang, li, tenant):
    before = accounts(tenant, wang)
    response = owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["already_erased"] is False
    assert response.json()["removed"]["identities"] == 2
    with tenant_scope(tenant):
        member = Member.objects.get(pk=wang.pk)
        assert (member.name, member.birthday, member.city, member.phone_encrypted,
                member.phone_hash, member.phone_masked) == ("", None, "", "", "", "")
        assert member.status == "erased"
        assert member.erased_at is not None
        assert (member.marketing_consent, member.profiling_consent) == (False, False)
        assert not MemberIdentity.objects.filter(member=wang).exists()
        assert not MemberNote.objects.filter(member=wang).exists()
        assert not MemberTag.objects.filter(member=wang).exists()
        assert not TimelineEvent.objects.filter(member=wang).exists()
        assert Tag.objects.get(name="护肤达人").member_count == 1  # 李娜 only
        assert MemberIdentity.objects.filter(member=li).count() == 2
        assert Member.objects.get(pk=li.pk).name == "李娜"
    assert accounts(tenant, wang) == before


def test_nothing_finds_an_erased_member_and_a_new_upsert_makes_a_new_one(owner_api, wang,
                                                                         tenant, actor):
    owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    with tenant_scope(tenant):
        found = member_list(actor=actor, filters={"identity_kind": "phone",
                                                  "identity_value": PHONE})
        assert not found.exists()
        again, outcome = member_upsert(actor=actor, identities=[
            {"kind": "phone", "value": PHONE}])
    assert outcome == "created"
    assert again.pk != wang.pk
    with tenant_scope(tenant):
        assert Order.objects.get(order_no="A1").member_id == wang.pk


def audiences(tenant) -> tuple:
    with tenant_scope(tenant):
        tag = Tag.objects.get(name="护肤达人")
        return (expression_members({"field": "city", "op": "eq", "value": "上海"}),
                expression_members({"tag": tag.pk}))


def test_erased_members_leave_every_audience(owner_api, wang, tenant):
    assert all(wang.member_no in audience for audience in audiences(tenant))
    owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    assert all(wang.member_no not in audience for audience in audiences(tenant))


def test_erasing_twice_changes_nothing_more_and_is_audited_once(owner_api, wang, tenant):
    owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    again = owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    assert again.status_code == 200
    assert again.json()["already_erased"] is True
    with tenant_scope(tenant):
        entry = AuditEntry.objects.get(action="member.erased")
    assert (entry.target_type, entry.target_id) == ("member", wang.pk)
    assert entry.data["member_ids"] == [wang.pk]


def test_erasure_needs_the_confirmation(owner_api, wang, tenant):
    for body in ({}, {"confirm": "yes"}):
        response = owner_api.post(erase_url(wang), body, format="json")
        assert response.status_code == 400
        assert response.json()["code"] in ("validation_error", "confirmation_required")
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).name == "王芳"
        assert not AuditEntry.objects.filter(action="member.erased").exists()


def test_only_owners_may_erase(tenant, wang):
    response = client_for(tenant).post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    assert response.status_code == 403
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).status == "active"


def test_other_tenants_cannot_erase(other_tenant, wang, tenant):
    client = client_for(other_tenant, scopes=["privacy:manage"])
    response = client.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    assert response.status_code == 404
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).name == "王芳"


def test_members_merged_into_the_erased_one_lose_their_copies_too(owner_api, wang, tenant,
                                                                  actor):
    with tenant_scope(tenant):
        loser, _ = member_upsert(actor=actor, identities=[{"kind": "email",
                                                           "value": "wf@example.com"}],
                                 profile={"name": "王芳（旧）"})
        member_upsert(actor=actor, identities=[{"kind": "phone", "value": PHONE},
                                               {"kind": "email", "value": "wf@example.com"}])
    owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    with tenant_scope(tenant):
        loser = Member.objects.get(pk=loser.pk)
    assert (loser.status, loser.name, loser.merged_into_id) == ("merged", "", wang.pk)


def test_the_member_page_erases_after_confirmation(owner, wang, tenant):
    client = Client()
    client.force_login(owner.user)
    assert "删除个人信息" in client.get(f"/members/{wang.pk}/").content.decode()
    client.post(f"/members/{wang.pk}/erase/", {"confirm": ""})
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).status == "active"
    response = client.post(f"/members/{wang.pk}/erase/", {"confirm": "ERASE"})
    assert response.status_code == 302
    with tenant_scope(tenant):
        assert Member.objects.get(pk=wang.pk).status == "erased"
        assert AuditEntry.objects.get(action="member.erased").actor == f"staff:{owner.pk}"


def test_a_system_actor_without_the_scope_cannot_erase(tenant, wang):
    from members.services.privacy import member_erase
    from scrm.api.errors import ApplicationError

    with tenant_scope(tenant):
        with pytest.raises(ApplicationError) as refused:
            member_erase(actor=Actor(tenant=tenant, scopes=frozenset({"members:write"})),
                         member=wang)
        assert refused.value.status_code == 403
        assert Member.objects.get(pk=wang.pk).status == "active"


def test_an_erased_member_cannot_be_edited_or_given_consent(owner_api, wang, tenant):
    owner_api.post(erase_url(wang), {"confirm": "ERASE"}, format="json")
    edit = owner_api.patch(f"/api/v1/members/{wang.pk}/", {"name": "王芳"}, format="json")
    consent = owner_api.post(f"/api/v1/members/{wang.pk}/consents/",
                             {"purpose": "marketing", "granted": True}, format="json")
    assert (edit.status_code, edit.json()["code"]) == (409, "member_erased")
    assert (consent.status_code, consent.json()["code"]) == (409, "member_erased")
    with tenant_scope(tenant):
        member = Member.objects.get(pk=wang.pk)
    assert (member.name, member.marketing_consent) == ("", False)
