"""Points for orders posted to the API, and back for their refunds."""

import pytest

from members.models import Order, Refund
from points.models import PointsEntry, PointsPolicy
from points.services import points_award_order, points_reverse_refund
from points.services.policy import policy_get
from points.tasks import points_award_orders_task
from scrm.tenancy import tenant_scope
from tests.members.test_api_orders import ORDER, order_payload, refunds_url
from tests.points.conftest import books_balance

ORDERS = "/api/v1/orders/"


def post(client, url, body, capture):
    with capture(execute=True):
        response = client.post(url, body, format="json")
    assert response.status_code in (200, 201), response.json()
    return response.json()


def set_policy(tenant, **changes):
    with tenant_scope(tenant):
        policy_get()
        PointsPolicy.objects.update(**changes)


def ledger(tenant, member_id) -> list[tuple]:
    with tenant_scope(tenant):
        return list(PointsEntry.objects.filter(member_id=member_id).order_by("id").values_list(
            "kind", "points", "balance_after", "ref_type", "ref_id", "idempotency_key"))


def points_of(api_client, member_id) -> dict:
    response = api_client.get(f"/api/v1/members/{member_id}/points/")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_paid_order_earns_points_per_yuan(tenant, store, api_client,
                                            django_capture_on_commit_callbacks):
    order = post(api_client, ORDERS, ORDER, django_capture_on_commit_callbacks)

    assert ledger(tenant, order["member"]) == [
        ("earn", 299, 299, "order", str(order["id"]), f"order:{order['id']}")]
    assert points_of(api_client, order["member"])["balance"] == 299
    books_balance(tenant)


def test_refunds_take_the_points_back_in_proportion(tenant, store, api_client,
                                                   django_capture_on_commit_callbacks):
    order = post(api_client, ORDERS, ORDER, django_capture_on_commit_callbacks)

    first = post(api_client, refunds_url(order["id"]), {"refund_no": "R1", "amount_fen": 9900},
                 django_capture_on_commit_callbacks)
    assert points_of(api_client, order["member"])["balance"] == 200  # 299 × 99/299 = 99
    post(api_client, refunds_url(order["id"]), {"refund_no": "R2", "amount_fen": 20000},
         django_capture_on_commit_callbacks)

    assert ledger(tenant, order["member"])[1:] == [
        ("reverse", -99, 200, "order", str(order["id"]), f"refund:{first['id']}"),
        ("reverse", -200, 0, "order", str(order["id"]), f"refund:{first['id'] + 1}"),
    ]
    assert points_of(api_client, order["member"])["balance"] == 0
    books_balance(tenant)


def test_a_retried_order_or_task_awards_once(tenant, store, api_client,
                                             django_capture_on_commit_callbacks):
    order = post(api_client, ORDERS, ORDER, django_capture_on_commit_callbacks)
    post(api_client, ORDERS, ORDER, django_capture_on_commit_callbacks)  # the same order again

    points_award_orders_task(tenant.pk, [order["id"]])

    assert len(ledger(tenant, order["member"])) == 1
    assert points_of(api_client, order["member"])["balance"] == 299


@pytest.mark.parametrize(("rounding", "amount_fen", "expected"), [
    ("floor", 29950, 898),  # 299.5 × 1.5 × 2 = 898.5
    ("round", 29950, 899),
])
def test_members_day_multiplier_and_rounding(tenant, store, api_client, rounding, amount_fen,
                                             expected, django_capture_on_commit_callbacks):
    set_policy(tenant, points_per_yuan="1.5", rounding=rounding, members_days=["1", "06-18"],
               members_day_multiplier="2")
    body = order_payload(amount_fen=amount_fen, lines=[
        {"sku": "SK-30", "product": "精华液", "quantity": 1, "price_fen": amount_fen}])

    order = post(api_client, ORDERS, body, django_capture_on_commit_callbacks)  # paid 11-01

    assert ledger(tenant, order["member"])[0][1] == expected


def test_the_daily_cap_limits_order_points(tenant, store, api_client,
                                           django_capture_on_commit_callbacks):
    set_policy(tenant, daily_earn_cap=500)
    orders = [post(api_client, ORDERS, order_payload(order_no=f"TM-{n}"),
                   django_capture_on_commit_callbacks) for n in range(3)]

    assert [row[:3] for row in ledger(tenant, orders[0]["member"])] == [
        ("earn", 299, 299), ("earn", 201, 500), ("earn", 0, 500)]
    books_balance(tenant)


def test_a_refund_handled_before_the_award_still_ends_right(tenant, store, api_client):
    # No after-commit callbacks: neither the award nor the refund's reversal ran yet.
    order = api_client.post(ORDERS, ORDER, format="json").json()
    api_client.post(refunds_url(order["id"]), {"refund_no": "R1", "amount_fen": 9900},
                    format="json")
    with tenant_scope(tenant):
        refund = Refund.objects.get()
        points_reverse_refund(order=Order.objects.get(), refund_id=refund.pk)  # nothing yet
        points_award_order(order=Order.objects.get())

    assert [row[:3] for row in ledger(tenant, order["member"])] == [
        ("earn", 299, 299), ("reverse", -99, 200)]
    books_balance(tenant)
