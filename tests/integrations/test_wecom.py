"""WeCom from the sandbox: guides mapped to staff, customers and their relations as history,
groups and membership, contact-way attribution and welcome messages, loss alerts, transfers."""

import pytest

from integrations.models import (
    ChannelCode,
    ContactRelation,
    ExternalContact,
    GroupChat,
    GroupMember,
    LossAlert,
    WeComUser,
)
from integrations.services.channels import channel_code_create
from integrations.services.wecom import customers_transfer, wecom_sync_run, wecom_sync_start
from members.models import Member, MemberIdentity
from scrm.jobs import job_run
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory, StoreFactory
from tests.integrations.conftest import CORPID


def sync(actor, corp, tenant, runner=wecom_sync_run):
    with tenant_scope(tenant):
        job = wecom_sync_start(actor=actor, corp=corp, enqueue=False)
        job_run(tenant_id=tenant.pk, job_id=job.pk, runner=runner)
        job.refresh_from_db()
        return job


def sandbox_pairs(sandbox) -> set[tuple[str, str]]:
    corp = sandbox.core._corp(CORPID)
    return {(ext, userid) for ext, userid in corp.follows}


@pytest.fixture
def guide(tenant, store):
    return StaffFactory(tenant=tenant, role=Role.GUIDE, store=store, wecom_userid="guide001")


def test_a_full_sync_brings_guides_customers_relations_and_groups(sandbox, actor, corp,
                                                                  tenant, guide):
    job = sync(actor, corp, tenant)
    assert job.status == "succeeded", job.error
    pairs = sandbox_pairs(sandbox)
    with tenant_scope(tenant):
        assert WeComUser.objects.get(userid="guide001").staff_id == guide.pk
        relations = set(ContactRelation.objects.filter(status="active").values_list(
            "contact__external_userid", "user__userid"))
        assert relations == pairs
        contacts = ExternalContact.objects.count()
        assert contacts == len({ext for ext, _u in pairs})
        assert MemberIdentity.objects.filter(kind="wecom_external_userid").count() >= contacts
        assert GroupChat.objects.count() == len(sandbox.core._corp(CORPID).group_chats)
        assert GroupMember.objects.filter(left_at__isnull=True).exists()
    again = sync(actor, corp, tenant)
    assert (again.result.get("created"), again.result.get("opened"), again.result["lost"]) == (
        0, 0, 0)


def test_a_customer_added_through_a_contact_way_is_attributed_and_welcomed(
        sandbox, actor, corp, tenant, guide, deliver):
    sync(actor, corp, tenant)
    with tenant_scope(tenant):
        code = channel_code_create(actor=actor, kind=ChannelCode.Kind.WECOM_CONTACT,
                                   name="门店导购码", corp=corp, guide_userids=["guide001"],
                                   welcome_text="您好，我是您的专属导购～")
    added = sandbox.simulate_work("add_customer", userid="guide001", config_id=code.config_id,
                                  new_person={"name": "王芳"})
    deliver()
    with tenant_scope(tenant):
        contact = ExternalContact.objects.get(external_userid=added["external_userid"])
        member = contact.member
        assert (member.guide_id, member.store_id) == (guide.pk, guide.store_id)
        assert member.first_touch["code"] == "门店导购码"
        relation = ContactRelation.objects.get(contact=contact, status="active")
        assert relation.state == code.scene
    welcomes = sandbox.outbox("welcome")
    assert [w.get("text", {}).get("content") for w in welcomes][-1] == "您好，我是您的专属导购～"


def test_deletions_close_the_relation_raise_a_loss_alert_and_a_return_opens_a_new_stint(
        sandbox, actor, corp, tenant, guide, deliver):
    sync(actor, corp, tenant)
    added = sandbox.simulate_work("add_customer", userid="guide001",
                                  new_person={"name": "李雷"})
    deliver()
    external = added["external_userid"]
    sandbox.simulate_work("customer_deletes_member", userid="guide001", external_userid=external)
    deliver()
    with tenant_scope(tenant):
        relation = ContactRelation.objects.get(contact__external_userid=external)
        assert (relation.status, relation.ended_at is not None) == ("deleted_by_customer", True)
        alert = LossAlert.objects.get()
        assert (alert.kind, alert.guide_id, alert.store_id_at_alert) == (
            "customer_deleted_guide", guide.pk, guide.store_id)
    sandbox.simulate_work("member_deletes_customer", userid="guide001", external_userid=external)
    deliver()
    sandbox.advance(60)  # events are told apart by their time, as WeChat's are
    sandbox.simulate_work("add_customer", userid="guide001", external_userid=external)
    deliver()
    with tenant_scope(tenant):
        stints = list(ContactRelation.objects.filter(contact__external_userid=external)
                      .order_by("id").values_list("status", flat=True))
        assert stints == ["deleted_by_customer", "active"]
        assert Member.objects.filter(identities__value=external).count() == 1


def test_the_store_manager_sees_their_guides_loss_alerts(sandbox, actor, corp, tenant, guide,
                                                         store, deliver):
    from django.test import Client

    sync(actor, corp, tenant)
    added = sandbox.simulate_work("add_customer", userid="guide001", new_person={"name": "甲"})
    deliver()
    sandbox.simulate_work("member_deletes_customer", userid="guide001",
                          external_userid=added["external_userid"])
    deliver()
    manager = StaffFactory(tenant=tenant, role=Role.STORE_MANAGER, store=store)
    with tenant_scope(tenant):
        other_store = StoreFactory(tenant=tenant)
    other_manager = StaffFactory(tenant=tenant, role=Role.STORE_MANAGER, store=other_store)
    client = Client()
    client.force_login(manager.user)
    alerts = client.get("/api/v1/integrations/loss-alerts/?open=true").json()["results"]
    assert [a["kind"] for a in alerts] == ["guide_deleted_customer"]
    client.force_login(other_manager.user)
    assert client.get("/api/v1/integrations/loss-alerts/").json()["results"] == []


def test_group_joins_and_leaves_are_kept_as_history(sandbox, actor, corp, tenant, deliver):
    sync(actor, corp, tenant)
    chat = next(iter(sandbox.core._corp(CORPID).group_chats.values()))
    customer = next(iter(sandbox.core._corp(CORPID).customers))
    sandbox.simulate_work("groupchat", action="add_member", chat_id=chat.chat_id,
                          members=[customer])
    deliver()
    sandbox.simulate_work("groupchat", action="del_member", chat_id=chat.chat_id,
                          members=[customer])
    deliver()
    with tenant_scope(tenant):
        stints = GroupMember.objects.filter(group__chat_id=chat.chat_id, userid=customer)
        assert stints.count() >= 1
        assert stints.filter(left_at__isnull=True).count() == 0


def test_customers_transfer_closes_the_old_relation(sandbox, actor, corp, tenant):
    sync(actor, corp, tenant)
    with tenant_scope(tenant):
        relation = ContactRelation.objects.filter(user__userid="guide001",
                                                  status="active").first()
        results = customers_transfer(actor=actor, corp=corp, handover_userid="guide001",
                                     takeover_userid="guide002",
                                     external_userids=[relation.contact.external_userid],
                                     resigned=False)
        assert [r["errcode"] for r in results] == [0]
        relation.refresh_from_db()
        assert relation.status == "transferred"
