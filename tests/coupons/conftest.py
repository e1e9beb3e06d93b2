import itertools
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services import coupon_issue, coupon_template_save
from members.models import TimelineEvent
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tests.points.conftest import new_member

_keys = itertools.count(1)


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


@pytest.fixture
def member(actor):
    return new_member(actor, name="王芳")


@pytest.fixture
def other_member(actor):
    return new_member(actor, name="李雷")


def days(n: float) -> datetime:
    return timezone.now() + timedelta(days=n)


FROM_PAST = datetime(2025, 1, 1, tzinfo=timezone.get_fixed_timezone(480))


def template_create(actor: Actor, **fields) -> CouponTemplate:
    """满 100 减 20, 30 days from issue, unless ``fields`` say otherwise."""
    values = {"code": "c100-20", "name": "满 100 减 20", "kind": "fixed", "amount_fen": 2000,
              "threshold_fen": 10000, "validity": "relative", "valid_days": 30, **fields}
    with tenant_scope(actor.tenant):
        return coupon_template_save(actor=actor, changes=values)


def issue(actor: Actor, template: CouponTemplate, member, key: str | None = None,
          source: str = "manual") -> Coupon:
    with tenant_scope(actor.tenant):
        return coupon_issue(actor=actor, template=template, member=member,
                            key=key or f"test:{next(_keys)}", source=source)


def coupon_state(tenant) -> dict:
    """Everything coupons keep for the tenant, to show a refusal changed nothing."""
    with tenant_scope(tenant):
        return {
            "templates": sorted(CouponTemplate.objects.values_list(
                "id", "issued_count", "total_stock", "is_active")),
            "coupons": sorted(Coupon.objects.values_list(
                "id", "status", "member_id", "discount_fen", "redeemed_order_id")),
            "timeline": TimelineEvent.objects.filter(kind__startswith="coupon.").count(),
        }


def fresh(coupon: Coupon) -> Coupon:
    with tenant_scope(coupon.tenant_id):
        return Coupon.objects.get(pk=coupon.pk)


def issued_count(template: CouponTemplate) -> int:
    with tenant_scope(template.tenant_id):
        return CouponTemplate.objects.get(pk=template.pk).issued_count
