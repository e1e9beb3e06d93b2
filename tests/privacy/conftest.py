import pytest
from django.utils import timezone

from campaigns.coupons.models import CouponTemplate
from campaigns.coupons.services import coupon_issue
from members.models import Member
from members.services import member_upsert, order_ingest
from members.services.notes import member_note_add
from points.services.ledger import points_earn
from scrm.access import Actor
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tags.models import Tag, TagGroup
from tags.services.tagging import member_tag_add
from tests.conftest import client_for
from tests.coupons.conftest import template_create
from tests.factories import StaffFactory

PHONE = "13800138000"


@pytest.fixture
def owner(tenant):
    with tenant_scope(tenant):
        return StaffFactory(tenant=tenant, role=Role.OWNER, display_name="老板")


@pytest.fixture
def actor(owner) -> Actor:
    return Actor.for_membership(owner)


def customer(actor: Actor, *, phone: str, name: str, order_no: str) -> Member:
    """A member with an identity, an order, points, a tag, a coupon and a note."""
    with tenant_scope(actor.tenant):
        member, _outcome = member_upsert(actor=actor, identities=[
            {"kind": "phone", "value": phone},
            {"kind": "wechat_openid", "app_id": "wx1", "value": f"o{phone}"}],
            profile={"name": name, "city": "上海", "birthday": "1990-01-02",
                     "marketing_consent": True})
        order_ingest(actor=actor, data={
            "order_no": order_no, "channel": "pos", "paid_at": timezone.now(),
            "amount_fen": 12800, "buyer": {"identities": [{"kind": "phone", "value": phone}]},
            "lines": [{"sku": "SK-1", "product": "精华液", "quantity": 1, "price_fen": 12800}]})
        points_earn(actor=actor, member=member, points=300, reason="入会礼")
        group, _ = TagGroup.objects.get_or_create(tenant=actor.tenant, name="兴趣")
        tag, _ = Tag.objects.get_or_create(tenant=actor.tenant, group=group, name="护肤达人")
        member_tag_add(actor=actor, member=member, tag=tag)
        template = CouponTemplate.objects.filter(code="c100-20").first() or template_create(actor)
        coupon_issue(actor=actor, template=template, member=member, key=f"welcome-{phone}",
                     source="manual")
        member_note_add(actor=actor, member=member, text=f"{name}偏好清爽型")
        return Member.objects.get(pk=member.pk)


@pytest.fixture
def wang(actor):
    return customer(actor, phone=PHONE, name="王芳", order_no="A1")


@pytest.fixture
def li(actor, wang):
    return customer(actor, phone="13900139000", name="李娜", order_no="B1")


@pytest.fixture
def owner_api(tenant):
    return client_for(tenant, scopes=["members:read", "members:write", "privacy:manage"])
