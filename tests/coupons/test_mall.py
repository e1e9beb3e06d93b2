"""The points mall's coupon items: redeemed with points, the coupon is issued and the
redemption fulfilled; without a template or stock it stays ``created`` until an operator
cancels it, which gives the points back."""

import logging

import pytest

from campaigns.coupons.models import Coupon
from campaigns.coupons.tasks import coupons_issue_for_mall_task
from points.models import MallRedemption
from points.services import points_earn
from points.services.mall import mall_item_create
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import issue, issued_count, template_create
from tests.points.conftest import balance

REDEMPTIONS = "/api/v1/mall/redemptions/"


@pytest.fixture
def funded(actor, member):
    with tenant_scope(actor.tenant):
        points_earn(actor=actor, member=member, points=1000, reason="活动")
    return member


def coupon_item(actor, template_code: str, **fields):
    with tenant_scope(actor.tenant):
        return mall_item_create(actor=actor, name="满 100 减 20 券", kind="coupon", points=200,
                                stock=5, coupon_template=template_code, **fields)


def redeem(api_client, member, item, capture, quantity: int = 1):
    with capture(execute=True):
        response = api_client.post(REDEMPTIONS, {"member": member.pk, "item": item.pk,
                                                 "quantity": quantity}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_a_coupon_item_bought_with_points_issues_its_coupon_and_is_fulfilled(
        tenant, api_client, actor, funded, django_capture_on_commit_callbacks):
    template = template_create(actor, code="mall-20", total_stock=10)
    item = coupon_item(actor, "mall-20")

    redemption_id = redeem(api_client, funded, item, django_capture_on_commit_callbacks)

    with tenant_scope(tenant):
        redemption = MallRedemption.objects.get(pk=redemption_id)
        coupon = Coupon.objects.get()
    assert (redemption.status, redemption.fulfilled_at is not None) == ("fulfilled", True)
    assert (coupon.template_id, coupon.member_id, coupon.source, coupon.ref,
            coupon.idempotency_key, coupon.status) == (
        template.pk, funded.pk, "mall", str(redemption_id), f"mall:{redemption_id}", "issued")
    assert balance(funded) == 800
    assert issued_count(template) == 1
    listed = api_client.get(f"/api/v1/members/{funded.pk}/coupons/").json()["results"]
    assert [(c["code"], c["source"]) for c in listed] == [(coupon.code, "mall")]
    # The task running again (a redelivery) issues nothing more.
    assert coupons_issue_for_mall_task(tenant.pk, redemption_id) == 0
    with tenant_scope(tenant):
        assert Coupon.objects.count() == 1


def test_two_of_an_item_are_two_coupons(tenant, api_client, actor, funded,
                                        django_capture_on_commit_callbacks):
    template_create(actor, code="mall-20", per_member_limit=0)
    item = coupon_item(actor, "mall-20")

    redemption_id = redeem(api_client, funded, item, django_capture_on_commit_callbacks,
                           quantity=2)

    with tenant_scope(tenant):
        assert sorted(Coupon.objects.values_list("idempotency_key", flat=True)) == [
            f"mall:{redemption_id}", f"mall:{redemption_id}:2"]
        assert MallRedemption.objects.get(pk=redemption_id).status == "fulfilled"


@pytest.mark.parametrize("problem", ["no_template", "out_of_stock"])
def test_without_a_coupon_to_issue_the_redemption_waits_and_can_be_cancelled(
        tenant, api_client, actor, funded, other_member, problem, caplog,
        django_capture_on_commit_callbacks):
    if problem == "out_of_stock":
        template = template_create(actor, code="mall-20", total_stock=1)
        issue(actor, template, other_member)
    item = coupon_item(actor, "mall-20")

    with caplog.at_level(logging.WARNING, logger="campaigns.coupons.services.benefits"):
        redemption_id = redeem(api_client, funded, item, django_capture_on_commit_callbacks)

    with tenant_scope(tenant):
        assert MallRedemption.objects.get(pk=redemption_id).status == "created"
        assert not Coupon.objects.filter(member=funded).exists()
    assert balance(funded) == 800
    assert f"mall redemption {redemption_id}" in caplog.text
    cancelled = api_client.post(f"{REDEMPTIONS}{redemption_id}/cancel/", {"reason": "券已发完"},
                                format="json")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert balance(funded) == 1000


def test_gift_items_are_left_to_the_mall(tenant, api_client, actor, funded,
                                         django_capture_on_commit_callbacks):
    with tenant_scope(tenant):
        gift = mall_item_create(actor=actor, name="保温杯", points=100, stock=5)

    redemption_id = redeem(api_client, funded, gift, django_capture_on_commit_callbacks)

    with tenant_scope(tenant):
        assert MallRedemption.objects.get(pk=redemption_id).status == "created"
        assert not Coupon.objects.exists()
