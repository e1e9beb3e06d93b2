"""The coupons API: templates with their results, issuing with an Idempotency-Key, lists,
redemption and cancellation; scopes per role, guides seeing only their customers, and other
tenants' data invisible and unchanged."""

import pytest
from django.test import Client

from campaigns.coupons.models import Coupon, CouponTemplate
from scrm.access import ALL_SCOPES, COUPONS_READ, Actor
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import client_for
from tests.coupons.conftest import coupon_state, issue, template_create
from tests.coupons.test_redeem import order_for
from tests.factories import StaffFactory
from tests.points.conftest import new_member

TEMPLATES = "/api/v1/coupons/templates/"
COUPONS = "/api/v1/coupons/"
ISSUE = "/api/v1/coupons/issue/"
REDEEM = "/api/v1/coupons/redeem/"
NEW_TEMPLATE = {"code": "c100-20", "name": "满 100 减 20", "kind": "fixed", "amount_fen": 2000,
                "threshold_fen": 10000, "validity": "relative", "valid_days": 30,
                "total_stock": 100, "per_member_limit": 1}


def staff_client(tenant, role, store=None) -> tuple[Client, object]:
    staff = StaffFactory(tenant=tenant, role=role, store=store)
    client = Client()
    client.force_login(staff.user)
    return client, staff


def post(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", **headers)


@pytest.fixture
def template(actor):
    return template_create(actor, total_stock=100)


# Templates


def test_a_template_is_created_listed_read_and_changed(tenant, api_client):
    created = post(api_client, TEMPLATES, NEW_TEMPLATE)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert {k: body[k] for k in (*NEW_TEMPLATE, "issued_count", "stock_left", "is_active")} == {
        **NEW_TEMPLATE, "issued_count": 0, "stock_left": 100, "is_active": True}
    assert body["stats"] == {"issued": 0, "redeemed": 0, "expired": 0, "cancelled": 0,
                             "unused": 0, "redemption_rate": 0.0, "discount_fen": 0,
                             "orders": 0, "gmv_fen": 0, "stock_left": 100}

    listed = api_client.get(TEMPLATES).json()["results"]
    changed = api_client.patch(f"{TEMPLATES}{body['id']}/", {"is_active": False},
                               content_type="application/json")
    renamed = api_client.patch(f"{TEMPLATES}{body['id']}/", {"code": "other"},
                               content_type="application/json")

    assert [t["code"] for t in listed] == ["c100-20"]
    assert (changed.status_code, changed.json()["is_active"]) == (200, False)
    assert (renamed.status_code, renamed.json()["code"]) == (400, "code_immutable")
    assert api_client.get(TEMPLATES, {"is_active": "true"}).json()["results"] == []


def test_a_bad_template_is_a_400_with_its_field_and_nothing_is_saved(tenant, api_client):
    response = post(api_client, TEMPLATES, {**NEW_TEMPLATE, "kind": "percent", "amount_fen": 0})

    assert response.status_code == 400
    assert response.json() == {"code": "validation_error",
                               "message": "请求数据有误：折扣券须设置 1 到 99 之间的减免比例。",
                               "errors": {"percent_off": ["折扣券须设置 1 到 99 之间的减免比例。"]}}
    unknown = post(api_client, TEMPLATES, {**NEW_TEMPLATE, "colour": "red"})
    assert (unknown.status_code, unknown.json()["errors"]) == (400, {"colour": ["未知字段。"]})
    with tenant_scope(tenant):
        assert not CouponTemplate.objects.exists()


def test_a_template_s_results_count_each_order_once(tenant, actor, api_client, template,
                                                    store):
    order = order_for(actor, "13900000002", 15000)
    with tenant_scope(tenant):
        buyer = order.member
    other = template_create(actor, code="other", per_member_limit=0, threshold_fen=0)
    on_order = issue(actor, template, buyer)
    also_on_order = issue(actor, other, buyer)
    at_checkout = issue(actor, template, new_member(actor))
    issue(actor, template, new_member(actor))  # unused
    cancelled = issue(actor, template, new_member(actor))
    for code, body in ((on_order.code, {"order": order.pk}),
                       (also_on_order.code, {"order": order.pk}),
                       (at_checkout.code, {"order_amount_fen": 12000})):
        assert post(api_client, REDEEM, {"code": code, **body}).status_code == 200
    assert post(api_client, f"{COUPONS}{cancelled.code}/cancel/",
                {"reason": "发错"}).status_code == 200

    stats = api_client.get(f"{TEMPLATES}{template.pk}/").json()["stats"]

    assert stats == {"issued": 4, "redeemed": 2, "expired": 0, "cancelled": 1, "unused": 1,
                     "redemption_rate": 0.5, "discount_fen": 4000, "orders": 2,
                     "gmv_fen": 27000, "stock_left": 96}
    assert api_client.get(f"{TEMPLATES}{other.pk}/").json()["stats"]["orders"] == 1


def test_an_analyst_reads_templates_but_cannot_write_them(tenant, template):
    client, _staff = staff_client(tenant, Role.ANALYST)

    assert client.get(f"{TEMPLATES}{template.pk}/").status_code == 200
    assert post(client, TEMPLATES, {**NEW_TEMPLATE, "code": "x"}).status_code == 403
    assert post(client, ISSUE, {"template": template.pk, "member": 1}).status_code == 403


# Issuing


def test_issuing_by_code_or_id_with_an_idempotency_key(tenant, api_client, template, member):
    first = post(api_client, ISSUE, {"template": "c100-20", "member": member.pk},
                 HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(api_client, ISSUE, {"template": "c100-20", "member": member.pk},
                 HTTP_IDEMPOTENCY_KEY="k-1")
    by_id = post(api_client, ISSUE, {"template": template.pk, "member": member.pk})

    assert first.status_code == 201, first.json()
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (
        201, first.json(), "true")
    body = first.json()
    assert (body["template_code"], body["member"], body["status"], body["source"],
            body["kind"]) == ("c100-20", member.pk, "issued", "manual", "fixed")
    assert (by_id.status_code, by_id.json()["code"]) == (409, "limit_reached")
    with tenant_scope(tenant):
        assert list(Coupon.objects.values_list("idempotency_key", flat=True)) == ["api:k-1"]


def test_issuing_refusals_change_nothing(tenant, other_tenant, api_client, template, member):
    stranger = new_member(Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES)))
    before = coupon_state(tenant)

    assert post(api_client, ISSUE, {"template": "nope", "member": member.pk}
                ).status_code == 404
    assert post(api_client, ISSUE, {"template": template.pk, "member": stranger.pk}
                ).status_code == 404
    assert post(api_client, ISSUE, {"template": True, "member": member.pk}
                ).json()["errors"] == {"template": ["须为模板 ID（数字）或编码（字符串）。"]}
    assert coupon_state(tenant) == before


# Lists and visibility


def test_coupons_are_listed_by_member_status_and_template(tenant, actor, api_client, template,
                                                          member, other_member,
                                                          django_assert_num_queries):
    other = template_create(actor, code="other")
    mine, theirs, another = (issue(actor, template, member), issue(actor, template, other_member),
                             issue(actor, other, member))
    post(api_client, REDEEM, {"code": theirs.code, "order_amount_fen": 20000})

    def codes(**params) -> list[str]:
        return [c["code"] for c in api_client.get(COUPONS, params).json()["results"]]

    assert codes() == [another.code, theirs.code, mine.code]
    assert codes(member=member.pk) == [another.code, mine.code]
    assert codes(status="redeemed") == [theirs.code]
    assert codes(template="other") == codes(template=str(other.pk)) == [another.code]
    assert codes(template="nope") == []
    page = api_client.get(COUPONS, {"page_size": 2}).json()
    assert [c["code"] for c in api_client.get(page["next"]).json()["results"]] == [mine.code]
    assert api_client.get(f"{COUPONS}{mine.code.lower()}/").json()["id"] == mine.pk
    member_list = api_client.get(f"/api/v1/members/{member.pk}/coupons/").json()["results"]
    assert [c["code"] for c in member_list] == [another.code, mine.code]
    with django_assert_num_queries(3):  # the key, its tenant, the page (templates joined)
        api_client.get(COUPONS)


def test_guides_see_their_own_customers_coupons_only(tenant, actor, store, template):
    client, guide = staff_client(tenant, Role.GUIDE, store)
    mine, elsewhere = new_member(actor, guide=guide), new_member(actor)
    own, other = issue(actor, template, mine), issue(actor, template, elsewhere)

    listed = client.get(COUPONS).json()["results"]

    assert [c["code"] for c in listed] == [own.code]
    assert client.get(f"{COUPONS}{own.code}/").status_code == 200
    assert client.get(f"{COUPONS}{other.code}/").status_code == 404
    assert client.get(COUPONS, {"member": elsewhere.pk}).json()["results"] == []
    assert client.get(f"/api/v1/members/{elsewhere.pk}/coupons/").status_code == 404
    assert post(client, ISSUE, {"template": template.pk, "member": mine.pk}).status_code == 403
    # At the till a guide redeems whatever code the customer shows.
    redeemed = post(client, REDEEM, {"code": other.code, "order_amount_fen": 20000})
    assert (redeemed.status_code, redeemed.json()["redeemed_store"]) == (200, "SH001")


# Redeeming and cancelling


def test_redeeming_on_an_order_by_id_or_number(tenant, actor, api_client, store):
    first_order = order_for(actor, "13900000003", 15000)
    second_order = order_for(actor, "13900000003", 30000)
    with tenant_scope(tenant):
        buyer = first_order.member
    template = template_create(actor, per_member_limit=0, kind="percent", amount_fen=0,
                               percent_off=15, max_discount_fen=3000)
    by_id, by_number = issue(actor, template, buyer), issue(actor, template, buyer)

    first = post(api_client, REDEEM, {"code": by_id.code, "order": first_order.pk})
    second = post(api_client, REDEEM, {"code": by_number.code, "order": {
        "order_no": second_order.order_no, "channel": "tmall"}})

    assert (first.status_code, first.json()["discount_fen"], first.json()["redeemed_order"]) == (
        200, 2250, first_order.pk)
    assert (second.json()["discount_fen"], second.json()["order_amount_fen"]) == (3000, 30000)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"order_amount_fen": 20000, "store": "SH001", "skus": ["X"]}, 200, None),
    ({"order_amount_fen": 9000}, 409, "threshold_not_met"),
    ({"order": 10**9}, 404, "not_found"),
    ({"order": {"order_no": "NOPE", "channel": "tmall"}}, 404, "not_found"),
    ({"order": 1, "order_amount_fen": 20000}, 400, "validation_error"),
    ({}, 400, "validation_error"),
    ({"order": {"order_no": "X"}}, 400, "validation_error"),
])
def test_redeem_answers(tenant, actor, api_client, template, member, body, status, code):
    coupon = issue(actor, template, member)
    before = coupon_state(tenant)

    response = post(api_client, REDEEM, {"code": coupon.code, **body})

    assert response.status_code == status, response.json()
    if code:
        assert response.json()["code"] == code
        assert coupon_state(tenant) == before
    else:
        assert (response.json()["status"], response.json()["discount_fen"]) == ("redeemed",
                                                                                2000)


def test_another_tenant_s_codes_are_404_and_stay_as_they_were(tenant, other_tenant, api_client):
    theirs = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    coupon = issue(theirs, template_create(theirs), new_member(theirs))
    before = coupon_state(other_tenant)

    assert post(api_client, REDEEM, {"code": coupon.code, "order_amount_fen": 20000}
                ).status_code == 404
    assert api_client.get(f"{COUPONS}{coupon.code}/").status_code == 404
    assert post(api_client, f"{COUPONS}{coupon.code}/cancel/", {"reason": "x"}
                ).status_code == 404
    assert api_client.get(COUPONS).json()["results"] == []
    assert api_client.get(f"{TEMPLATES}{coupon.template_id}/").status_code == 404
    assert coupon_state(other_tenant) == before


def test_cancelling_needs_a_reason_and_happens_once(tenant, actor, api_client, template,
                                                    member):
    coupon = issue(actor, template, member)
    url = f"{COUPONS}{coupon.code}/cancel/"

    missing = post(api_client, url, {})
    done = post(api_client, url, {"reason": "发错了"})
    again = post(api_client, url, {"reason": "发错了"})
    redeemed = post(api_client, REDEEM, {"code": coupon.code, "order_amount_fen": 20000})

    assert missing.status_code == 400
    assert (done.status_code, done.json()["status"], done.json()["cancel_reason"]) == (
        200, "cancelled", "发错了")
    assert (again.status_code, again.json()["code"]) == (409, "coupon_cancelled")
    assert (redeemed.status_code, redeemed.json()["code"]) == (409, "coupon_cancelled")


def test_a_read_only_key_cannot_redeem(tenant, template, member, actor):
    coupon = issue(actor, template, member)
    client = client_for(tenant, scopes=[COUPONS_READ])
    before = coupon_state(tenant)

    assert client.get(f"{COUPONS}{coupon.code}/").status_code == 200
    assert post(client, REDEEM, {"code": coupon.code, "order_amount_fen": 20000}
                ).status_code == 403
    assert coupon_state(tenant) == before
