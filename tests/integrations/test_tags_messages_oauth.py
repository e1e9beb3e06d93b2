"""Tags both ways, template and mass messages, and OAuth in the browser (the member's H5
page, the guide's WeCom login), against the sandbox."""

from urllib.parse import parse_qs, urlsplit

import requests
from django.test import Client

from integrations.models import ContactRelation, Follower, MassMessageRecipient, TemplateMessage
from integrations.services.followers import followers_sync_run, followers_sync_start
from integrations.services.messages import mass_message_create, template_send
from integrations.services.tagsync import corp_tag_mark, corp_tags_pull, oa_tags_pull
from integrations.services.wecom import wecom_sync_run, wecom_sync_start
from members.models import Member
from scrm.jobs import job_run
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag
from tests.factories import StaffFactory
from tests.integrations.conftest import APPID, CORPID


def full_sync(actor, tenant, *, app=None, corp=None):
    with tenant_scope(tenant):
        if app is not None:
            job = followers_sync_start(actor=actor, app=app, enqueue=False)
            job_run(tenant_id=tenant.pk, job_id=job.pk, runner=followers_sync_run)
        if corp is not None:
            job = wecom_sync_start(actor=actor, corp=corp, enqueue=False)
            job_run(tenant_id=tenant.pk, job_id=job.pk, runner=wecom_sync_run)


def test_oa_tags_arrive_as_synced_tags_with_their_followers(sandbox, actor, oa_app, tenant):
    full_sync(actor, tenant, app=oa_app)
    with tenant_scope(tenant):
        counts = oa_tags_pull(app=oa_app)
        vip = Tag.objects.get(external_source="oa_tag", name="VIP")
        holders = Follower.objects.filter(oa_tag_ids__contains=[int(
            vip.external_id.split(":")[1])]).count()
        assert counts["tags"] >= 1
        assert vip.kind == "synced"
        assert MemberTag.objects.filter(tag=vip).count() == holders > 0
        assert oa_tags_pull(app=oa_app)["added"] == 0  # a second pull changes nothing


def test_corp_tags_arrive_and_marking_one_reaches_wecom(sandbox, actor, corp, tenant):
    full_sync(actor, tenant, corp=corp)
    with tenant_scope(tenant):
        corp_tags_pull(corp=corp)
        gold = Tag.objects.get(external_source="wecom_tag", name="金卡")
        relation = ContactRelation.objects.filter(status="active").select_related(
            "contact", "user").first()
        member = Member.objects.get(pk=relation.member_id)
        assert corp_tag_mark(actor=actor, corp=corp, member=member, tag=gold, add=True) >= 1
        assert MemberTag.objects.filter(member=member, tag=gold).exists()
    tag_id = gold.external_id.split(":")[1]
    follow = sandbox.core._corp(CORPID).follows[(relation.contact.external_userid,
                                                 relation.user.userid)]
    assert tag_id in follow.tag_ids


def test_a_template_message_is_sent_once_and_its_delivery_recorded(sandbox, actor, oa_app,
                                                                   tenant, deliver):
    full_sync(actor, tenant, app=oa_app)
    with tenant_scope(tenant):
        member = Follower.objects.first().member
        data = {"thing1": "新人礼券", "amount2": "50元", "time3": "2026-12-31"}
        first = template_send(app=oa_app, member=member, template_id="TPL_COUPON", data=data,
                              key="coupon-1")
        again = template_send(app=oa_app, member=member, template_id="TPL_COUPON", data=data,
                              key="coupon-1")
        assert (first.pk, first.status, again.status) == (again.pk, "sent", "sent")
    assert len(sandbox.outbox("template")) == 1
    deliver()  # TEMPLATESENDJOBFINISH
    with tenant_scope(tenant):
        assert TemplateMessage.objects.get().status == "delivered"


def test_a_template_message_to_someone_not_following_is_skipped(sandbox, actor, oa_app, tenant):
    from members.services import member_upsert

    with tenant_scope(tenant):
        member, _ = member_upsert(actor=actor, identities=[{"kind": "phone",
                                                            "value": "13800138000"}])
        message = template_send(app=oa_app, member=member, template_id="TPL_COUPON",
                                data={"thing1": "x"}, key="k2")
        assert (message.status, message.error) == ("skipped", "未关注公众号")
    assert sandbox.outbox("template") == []


def test_mass_messages_leave_out_customers_at_their_limit(sandbox, actor, corp, tenant,
                                                          settings):
    settings.WECOM_MASS_LIMIT = 1
    full_sync(actor, tenant, corp=corp)
    with tenant_scope(tenant):
        member_ids = list(ContactRelation.objects.filter(
            user__userid="guide001", status="active").values_list("member_id", flat=True))
        first = mass_message_create(actor=actor, corp=corp, sender_userid="guide001",
                                    member_ids=member_ids, text="双十二福利", key="m1")
        assert first.msgid
    sandbox.simulate_work("member_confirms_groupmsg", msgid=first.msgid, userid="guide001")
    with tenant_scope(tenant):
        from integrations.services.messages import mass_message_results

        mass_message_results(message=first)
        sent = MassMessageRecipient.objects.filter(message=first, status=1).count()
        assert sent == len(member_ids)
        second = mass_message_create(actor=actor, corp=corp, sender_userid="guide001",
                                     member_ids=member_ids, text="再来一条", key="m2")
        assert MassMessageRecipient.objects.filter(message=second, status=9).count() == sent
        assert not second.msgid


def test_the_member_h5_page_signs_in_through_oa_oauth(sandbox, oa_app, tenant):
    client = Client()
    start = client.get(f"/h5/{APPID}/member/")
    assert start.status_code == 302
    authorize = start["Location"]
    assert authorize.startswith(f"{sandbox.url}/open.weixin.qq.com/connect/oauth2/authorize")
    person_openid = sandbox.openids([0])[0]
    answer = requests.get(authorize.split("#")[0] + f"&fake_openid={person_openid}",
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    landed = client.get(back.path, parse_qs(back.query) | {})
    assert landed.status_code == 302
    page = client.get(landed["Location"])
    assert page.status_code == 200
    assert "会员中心".encode() in page.content or "会员等级".encode() in page.content
    with tenant_scope(tenant):
        assert Member.objects.filter(identities__value=person_openid).count() == 1


def test_a_forged_oauth_callback_is_refused(sandbox, oa_app):
    response = Client().get(f"/h5/{APPID}/oauth/callback/", {"code": "x", "state": "forged"})
    assert response.status_code == 404


def test_a_guide_logs_in_through_wecom_and_a_stranger_cannot(sandbox, corp, tenant):
    guide = StaffFactory(tenant=tenant, role=Role.GUIDE, wecom_userid="guide001")
    client = Client()
    start = client.get(f"/guide/login/wecom/{CORPID}/")
    assert start.status_code == 302
    answer = requests.get(start["Location"].split("#")[0] + "&fake_userid=guide001",
                          allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    done = client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})
    assert done.status_code == 302
    assert int(client.session["_auth_user_id"]) == guide.user.pk

    stranger = Client()
    start = stranger.get(f"/guide/login/wecom/{CORPID}/")
    answer = requests.get(start["Location"].split("#")[0] + "&fake_userid=guide002",
                          allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    refused = stranger.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})
    assert refused.status_code == 403
    assert "_auth_user_id" not in stranger.session




def test_an_scrm_tag_pushed_to_the_oa_tags_its_followers_there(sandbox, actor, oa_app, tenant,
                                                               api_client):
    full_sync(actor, tenant, app=oa_app)
    with tenant_scope(tenant):
        from tags.models import TagGroup
        from tags.services.tagging import member_tag_add

        tag = Tag.objects.create(group=TagGroup.objects.create(name="运营"), name="高潜客户")
        followers = list(Follower.objects.select_related("member")[:3])
        for follower in followers:
            member_tag_add(actor=actor, member=follower.member, tag=tag)
    response = api_client.post(f"/api/v1/integrations/oa-apps/{oa_app.pk}/tags/push/",
                               {"tag": tag.pk}, format="json")
    assert response.status_code == 200, response.json()
    oa_tag_id = int(response.json()["external_id"].split(":")[1])
    client = sandbox.mp_client()
    assert all(oa_tag_id in client.tag.get_user_tag(f.openid) for f in followers)


def test_an_scrm_tag_pushed_to_wecom_becomes_a_corp_tag_on_its_customers(
        sandbox, actor, corp, tenant, api_client):
    full_sync(actor, tenant, corp=corp)
    with tenant_scope(tenant):
        from tags.models import TagGroup
        from tags.services.tagging import member_tag_add

        tag = Tag.objects.create(group=TagGroup.objects.create(name="兴趣"), name="香水")
        relation = ContactRelation.objects.filter(status="active").select_related(
            "contact", "user").first()
        member_tag_add(actor=actor, member=Member.objects.get(pk=relation.member_id), tag=tag)
    response = api_client.post(f"/api/v1/integrations/wecom-corps/{corp.pk}/tags/push/",
                               {"tag": tag.pk}, format="json")
    assert response.status_code == 200, response.json()
    corp_tag_id = response.json()["external_id"].split(":")[1]
    follow = sandbox.core._corp(CORPID).follows[(relation.contact.external_userid,
                                                 relation.user.userid)]
    assert corp_tag_id in follow.tag_ids


def test_the_api_sends_a_template_message_once(sandbox, actor, oa_app, tenant, api_client):
    full_sync(actor, tenant, app=oa_app)
    with tenant_scope(tenant):
        member_id = Follower.objects.first().member_id
    url = f"/api/v1/integrations/oa-apps/{oa_app.pk}/template-messages/"
    body = {"member": member_id, "template_id": "TPL_POINTS", "key": "points-9",
            "data": {"first": "积分到账", "keyword1": "+100", "keyword2": "1,280",
                     "remark": "感谢支持"}}
    first = api_client.post(url, body, format="json").json()
    again = api_client.post(url, body, format="json").json()
    assert (first["status"], again["id"]) == ("sent", first["id"])
    assert len(sandbox.outbox("template")) == 1
