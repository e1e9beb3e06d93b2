import pytest
from django.test import Client

from campaigns.coupons.services import coupon_template_save
from members.models import Member
from members.services import member_upsert
from scrm.access import Actor
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tags.models import Tag, TagGroup
from tags.services.segments import segment_save
from tests.factories import StaffFactory, StoreFactory


@pytest.fixture
def shop(tenant):
    """A tenant with two stores, one guide in each, an owner, an analyst and a customer
    service agent, a manual tag, and a customer of each guide."""
    with tenant_scope(tenant):
        north = StoreFactory(tenant=tenant, code="SH001", name="上海南京西路店")
        south = StoreFactory(tenant=tenant, code="HZ001", name="杭州湖滨店")
        staff = {
            "owner": StaffFactory(tenant=tenant, role=Role.OWNER, display_name="老板"),
            "analyst": StaffFactory(tenant=tenant, role=Role.ANALYST, display_name="分析师"),
            "service": StaffFactory(tenant=tenant, role=Role.CUSTOMER_SERVICE,
                                    display_name="客服"),
            "guide": StaffFactory(tenant=tenant, role=Role.GUIDE, store=north,
                                  display_name="导购小王"),
            "other_guide": StaffFactory(tenant=tenant, role=Role.GUIDE, store=south,
                                        display_name="导购小李"),
            "manager": StaffFactory(tenant=tenant, role=Role.STORE_MANAGER, store=south,
                                    display_name="店长"),
        }
        group = TagGroup.objects.create(tenant=tenant, name="兴趣")
        tag = Tag.objects.create(tenant=tenant, group=group, name="护肤达人")
        system = Actor(tenant=tenant, scopes=frozenset({"members:write"}))
        mine, _ = member_upsert(actor=system, identities=[
            {"kind": "phone", "value": "13800138000"}], profile={
            "name": "王芳", "store": north, "guide": staff["guide"], "city": "上海",
            "marketing_consent": True})
        theirs, _ = member_upsert(actor=system, identities=[
            {"kind": "phone", "value": "13900139000"}], profile={
            "name": "李娜", "store": south, "guide": staff["other_guide"], "city": "杭州",
            "marketing_consent": True})
        coupon = coupon_template_save(actor=Actor(tenant=tenant, scopes=frozenset()), changes={
            "code": "welcome20", "name": "满100减20", "kind": "fixed", "amount_fen": 2000,
            "threshold_fen": 10000, "validity": "relative", "valid_days": 30})
        shanghai = segment_save(actor=system, name="上海会员", expression={
            "field": "city", "op": "eq", "value": "上海"})
    return {"tenant": tenant, "stores": (north, south), "staff": staff, "tag": tag,
            "coupon": coupon, "segment": shanghai,
            "group": group, "mine": mine, "theirs": theirs}


def login(staff) -> Client:
    client = Client()
    client.force_login(staff.user)
    return client


@pytest.fixture
def as_role(shop):
    def make(role: str) -> Client:
        return login(shop["staff"][role])
    return make


def members_of(tenant) -> list[Member]:
    with tenant_scope(tenant):
        return list(Member.objects.order_by("pk"))
