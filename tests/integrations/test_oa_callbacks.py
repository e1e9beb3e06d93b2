"""OA callbacks end to end: the sandbox signs and encrypts real events, our URL checks,
decrypts, records once and processes them."""

from django.test import Client

from integrations.models import CallbackEvent, ChannelCode, ChannelEvent, Follower
from integrations.services.channels import channel_code_create
from members.models import Member, TimelineEvent
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag, TagGroup
from tests.integrations.conftest import APPID

URL = f"/wechat/mp/{APPID}/callback/"


def post(request):
    return Client().generic("POST", request.path_with_query, request.body,
                            content_type="text/xml")


def test_url_verification_echoes_echostr(sandbox, oa_app):
    sandbox.callbacks.receiver = lambda req: _get(req)
    result = sandbox.callbacks.verify_url("mp", APPID)
    assert result["ok"] is True


def _get(request):
    response = Client().get(request.path_with_query)
    return response.status_code, response.content


def test_a_subscribe_makes_a_follower_and_a_member(sandbox, oa_app, tenant, deliver):
    result = sandbox.simulate_mp("subscribe")
    deliveries = deliver()
    assert [(d.status, d.response_body) for d in deliveries] == [(200, b"success")]
    with tenant_scope(tenant):
        follower = Follower.objects.get(openid=result["openid"])
        assert follower.is_subscribed
        assert CallbackEvent.objects.get().status == "processed"
        assert TimelineEvent.objects.filter(member=follower.member,
                                            kind="oa.subscribed").count() == 1


def test_an_unsubscribe_keeps_the_member(sandbox, oa_app, tenant, deliver):
    result = sandbox.simulate_mp("subscribe")
    deliver()
    sandbox.simulate_mp("unsubscribe", openid=result["openid"])
    deliver()
    with tenant_scope(tenant):
        follower = Follower.objects.get(openid=result["openid"])
        assert (follower.is_subscribed, follower.unsubscribed_at is not None) == (False, True)
        assert Member.objects.filter(pk=follower.member_id, status="active").exists()


def test_a_retried_or_replayed_event_is_processed_once(sandbox, oa_app, tenant, deliver):
    sandbox.simulate_mp("subscribe")
    first = deliver()[0]
    again = sandbox.callbacks.replay(first.event_id)
    assert all(d.status == 200 for d in again)
    with tenant_scope(tenant):
        assert CallbackEvent.objects.count() == 1
        assert Member.objects.count() == 1


def test_forged_malformed_stale_and_oversized_callbacks_change_nothing(sandbox, oa_app, tenant):
    sandbox.simulate_mp("subscribe")
    (event,) = sandbox.callbacks.take()
    request = sandbox.callbacks.build(event)
    forged = request.path_with_query.replace("signature=", "signature=0")
    assert Client().generic("POST", forged, request.body,
                            content_type="text/xml").status_code == 403
    garbled = request.body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
    assert Client().generic("POST", request.path_with_query, garbled,
                            content_type="text/xml").status_code in (400, 403)
    assert Client().generic("POST", request.path_with_query, b"<xml><oops",
                            content_type="text/xml").status_code in (400, 403)
    stale = request.path_with_query.replace(f"timestamp={request.query['timestamp']}",
                                            "timestamp=1500000000")
    assert Client().generic("POST", stale, request.body,
                            content_type="text/xml").status_code == 403
    assert Client().generic("POST", request.path_with_query, b"x" * 70_000,
                            content_type="text/xml").status_code == 413
    assert Client().post("/wechat/mp/wxunknown000000/callback/?timestamp=1").status_code == 404
    with tenant_scope(tenant):
        assert not CallbackEvent.objects.exists()
        assert not Member.objects.exists()


def test_a_channel_qr_code_attributes_tags_and_welcomes(sandbox, oa_app, actor, tenant,
                                                        store, deliver):
    with tenant_scope(tenant):
        group = TagGroup.objects.create(name="渠道")
        tag = Tag.objects.create(group=group, name="地铁海报")
        code = channel_code_create(actor=actor, kind=ChannelCode.Kind.OA_QR, name="地铁海报码",
                                   oa_app=oa_app, channel="海报", campaign="双十二",
                                   store=store, tag_ids=[tag.pk],
                                   welcome_text="欢迎关注！回复 1 领取新人券")
    sandbox.simulate_mp("scan", ticket=code.ticket)
    (delivery,) = deliver()
    assert delivery.status == 200
    assert b"<Encrypt>" in delivery.response_body  # an encrypted passive reply...
    assert "欢迎关注" in delivery.passive_reply  # ...which the sandbox decrypted
    with tenant_scope(tenant):
        event = ChannelEvent.objects.get()
        member = event.member
        assert (event.kind, event.is_new_member) == ("follow", True)
        assert member.first_touch["code"] == "地铁海报码"
        assert member.first_touch["campaign"] == "双十二"
        assert member.store_id == store.pk
        assert MemberTag.objects.filter(member=member, tag=tag).exists()
        code.refresh_from_db()
        assert (code.scans, code.new_members) == (1, 1)
