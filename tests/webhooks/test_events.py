"""Every event type is written by the service that makes the change, in its transaction,
and reaches the partner's endpoint."""

from django.utils import timezone

from campaigns.coupons.services import coupon_redeem
from campaigns.coupons.services.bulk import coupons_issue_bulk
from integrations.services.followers import follower_subscribed, followers_unsubscribe
from members.models import Order
from members.services import member_merge, member_upsert, order_ingest
from members.services.bulk import order_ingest_bulk
from members.services.members import member_update
from members.services.orders import refund_create
from points.services.ledger import points_earn
from scrm.models import OutboxEvent
from scrm.tenancy import tenant_scope
from tags.models import Tag, TagGroup
from tags.services.tagging import member_tag_add, member_tag_remove, tag_apply_chunk
from tests.campaigns.test_campaigns import make, people, run_now
from tests.conftest import client_for
from tests.coupons.conftest import issue, template_create
from tests.integrations.conftest import oa_app, sandbox, sandbox_options  # noqa: F401
from tests.members.test_api_orders import order_payload
from tests.points.test_tiers import create_program
from tests.webhooks.conftest import pump


def recorded(tenant) -> list[tuple[str, dict]]:
    with tenant_scope(tenant):
        return list(OutboxEvent.objects.order_by("pk").values_list("type", "data"))


def types(tenant) -> list[str]:
    return [type for type, _data in recorded(tenant)]


def phone(n: int) -> list[dict]:
    return [{"kind": "phone", "value": f"1390000{n:04d}"}]


def order(no: str, n: int, amount_fen: int = 29900) -> dict:
    return order_payload(order_no=no, amount_fen=amount_fen,
                         paid_at=timezone.now(), buyer={"identities": phone(n)},
                         lines=[{"sku": "SK-30", "product": "精华液", "quantity": 1,
                                 "price_fen": amount_fen}])


def test_member_and_order_services_record_their_events(actor, endpoint, receiver, store):
    with tenant_scope(actor.tenant):
        first, _ = member_upsert(actor=actor, identities=phone(1), profile={"name": "王芳"})
        member_update(actor=actor, member=first, profile={"city": "杭州"})
        second, _ = member_upsert(actor=actor, identities=phone(2))
        member_merge(actor=actor, survivor=first, merged=second)
        placed, _created = order_ingest(actor=actor, data=order("T1", 1))
        refund_create(actor=actor, order=placed, refund_no="R1", amount_fen=9900)
    events = dict(reversed(recorded(actor.tenant)))  # the first event of each type
    assert events["member.created"] == {"member_id": first.pk, "member_no": first.member_no,
                                        "source_channel": first.source_channel}
    assert events["member.updated"] == {"member_id": first.pk, "changed": ["city"]}
    assert events["member.merged"] == {"survivor_id": first.pk, "merged_id": second.pk,
                                       "reason": "manual"}
    assert events["order.created"]["order_id"] == placed.pk
    assert events["order.created"]["amount_fen"] == 29900
    assert events["order.refunded"] == {
        "order_id": placed.pk, "order_no": "T1", "refund_id": events["order.refunded"][
            "refund_id"], "refund_no": "R1", "member_id": first.pk, "amount_fen": 9900}
    pump()
    assert {body["type"] for body in receiver.bodies()} >= {
        "member.created", "member.updated", "member.merged", "order.created", "order.refunded"}


def test_points_tags_and_coupons_record_their_events(actor, endpoint, receiver):
    with tenant_scope(actor.tenant):
        member, _ = member_upsert(actor=actor, identities=phone(3))
        points_earn(actor=actor, member=member, points=100, reason="测试")
        tag = Tag.objects.create(group=TagGroup.objects.create(name="兴趣"), name="红酒")
        member_tag_add(actor=actor, member=member, tag=tag)
        member_tag_remove(actor=actor, member=member, tag=tag)
    template = template_create(actor, threshold_fen=0)
    coupon = issue(actor, template, member)
    with tenant_scope(actor.tenant):
        coupon_redeem(actor=actor, code=coupon.code, order_amount_fen=20000)
    events = dict(recorded(actor.tenant))
    assert events["points.changed"]["member_id"] == member.pk
    assert (events["points.changed"]["points"], events["points.changed"]["kind"]) == (100, "earn")
    assert events["tag.added"] == {"member_id": member.pk, "tag_id": tag.pk, "source": "manual"}
    assert events["tag.removed"] == {"member_id": member.pk, "tag_id": tag.pk, "source": "manual"}
    assert events["coupon.issued"] == {"coupon_id": coupon.pk, "template_id": template.pk,
                                       "member_id": member.pk, "source": "manual"}
    assert events["coupon.redeemed"] == {"coupon_id": coupon.pk, "member_id": member.pk,
                                         "order_id": None}


def test_tier_changes_record_their_event(tenant, actor, endpoint, store,
                                         django_capture_on_commit_callbacks):
    client = client_for(tenant)
    program = create_program(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/orders/", order_payload(
            order_no="V1", amount_fen=600000, paid_at=timezone.now().isoformat(),
            buyer={"identities": phone(4)},
            lines=[{"sku": "SK-30", "product": "精华液", "quantity": 1, "price_fen": 600000}]),
            format="json")
    assert response.status_code == 201, response.json()
    changes = [data for type, data in recorded(tenant) if type == "tier.changed"]
    assert changes[-1]["member_id"] == response.json()["member"]
    assert changes[-1]["program_id"] == program["id"]
    assert changes[-1]["change"] == "upgrade"


def test_a_finished_campaign_records_its_event(actor, endpoint):
    people(actor, 2)
    campaign = make(actor)
    run = run_now(actor, campaign)
    events = recorded(actor.tenant)
    assert ("campaign.finished", {"campaign_id": campaign.pk, "run_id": run.pk,
                                  "status": "completed"}) in events
    assert types(actor.tenant).count("points.changed") == 2  # the campaign's 88 points each


def test_follows_and_unfollows_record_their_events(actor, endpoint, oa_app):  # noqa: F811
    with tenant_scope(actor.tenant):
        member, _new = follower_subscribed(app=oa_app, openid="o-new-follower",
                                           at=timezone.now())
        followers_unsubscribe(app=oa_app, openids=["o-new-follower"], at=timezone.now())
    events = dict(recorded(actor.tenant))
    expected = {"app_id": oa_app.appid, "openid": "o-new-follower", "member_id": member.pk}
    assert events["follower.subscribed"] == expected
    assert events["follower.unsubscribed"] == expected


def test_bulk_paths_write_one_copy_per_chunk(actor, endpoint, receiver, store):
    with tenant_scope(actor.tenant):
        results = order_ingest_bulk(actor=actor, orders=[(i, order(f"B{i}", 100 + i))
                                                         for i in range(5)])
    assert [result["status"] for result in results] == ["created"] * 5
    with tenant_scope(actor.tenant):
        members = list(Order.objects.order_by("pk").values_list("member_id", flat=True))
        tag = Tag.objects.create(group=TagGroup.objects.create(name="批量"), name="双十二")
        numbers = [m.member_no for m in members_of(members)]
        tag_apply_chunk(tag=tag, action="add", member_nos=numbers, actor=actor.label,
                        source="manual")
    template = template_create(actor, code="bulk", threshold_fen=0)
    with tenant_scope(actor.tenant):
        coupons_issue_bulk(actor=actor, template=template, member_ids=members,
                           key_prefix="bulk-test", source="campaign")
    kinds = types(actor.tenant)
    assert kinds.count("member.created") == 5
    assert kinds.count("order.created") == 5
    assert kinds.count("coupon.issued") == 5
    (bulk_tag,) = [data for type, data in recorded(actor.tenant) if type == "tag.added"]
    assert bulk_tag == {"tag_id": tag.pk, "source": "manual", "member_ids": sorted(members)}
    assert pump() == 16
    assert len(receiver.received) == 16


def members_of(ids):
    from members.models import Member

    return Member.objects.filter(pk__in=ids).order_by("pk")


def test_nothing_is_written_for_types_no_endpoint_subscribes_to(actor, receiver, store):
    from integrations.webhooks.services.endpoints import endpoint_create

    with tenant_scope(actor.tenant):
        endpoint_create(actor=actor, name="订单系统", url=receiver.url,
                        event_types=["order.created"])
        member_upsert(actor=actor, identities=phone(9))
        order_ingest(actor=actor, data=order("O9", 9))
    assert types(actor.tenant) == ["order.created"]
