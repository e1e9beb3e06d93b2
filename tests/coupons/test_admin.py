"""Coupons in the admin: templates saved through the service (its refusals shown on the
form), coupons read-only with a cancel action."""

from django.test import Client

from campaigns.coupons.models import Coupon, CouponTemplate
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import fresh, issue, template_create
from tests.factories import StaffFactory

ADD = "/admin/coupons/coupontemplate/add/"


def _client(tenant, role) -> Client:
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=role).user)
    return client


def _form(**fields) -> dict:
    return {"code": "c100-20", "name": "满 100 减 20", "description": "", "kind": "fixed",
            "amount_fen": 2000, "percent_off": 0, "max_discount_fen": 0, "gift_name": "",
            "threshold_fen": 10000, "validity": "relative", "valid_from_0": "",
            "valid_from_1": "", "valid_until_0": "", "valid_until_1": "", "valid_days": 30,
            "total_stock": 0, "per_member_limit": 1, "stores": "[]", "skus": "[]",
            "categories": "[]", "allowed_tiers": "[]", "is_active": "on", **fields}


def test_an_owner_creates_a_template_through_the_service(tenant):
    client = _client(tenant, Role.OWNER)

    response = client.post(ADD, _form())

    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(tenant):
        template = CouponTemplate.objects.get()
        assert AuditEntry.objects.filter(action="coupons.template_create",
                                         target_id=template.pk).exists()
    assert (template.code, template.amount_fen, template.valid_days) == ("c100-20", 2000, 30)
    assert client.get(f"/admin/coupons/coupontemplate/{template.pk}/change/").status_code == 200


def test_what_the_service_refuses_is_shown_on_the_form(tenant):
    client = _client(tenant, Role.OWNER)

    response = client.post(ADD, _form(amount_fen=0))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["amount_fen"] == ["满减券须设置减免金额。"]
    with tenant_scope(tenant):
        assert not CouponTemplate.objects.exists()


def test_an_analyst_reads_but_cannot_add(tenant):
    client = _client(tenant, Role.ANALYST)

    assert client.get("/admin/coupons/coupontemplate/").status_code == 200
    assert client.get("/admin/coupons/coupon/").status_code == 200
    assert client.post(ADD, _form()).status_code == 403


def test_the_cancel_action_voids_unused_coupons(tenant, actor, member, other_member):
    template = template_create(actor, per_member_limit=0)
    unused, used = issue(actor, template, member), issue(actor, template, other_member)
    with tenant_scope(tenant):
        Coupon.objects.filter(pk=used.pk).update(status="redeemed")
    client = _client(tenant, Role.OWNER)

    response = client.post("/admin/coupons/coupon/", {
        "action": "cancel", "_selected_action": [unused.pk, used.pk]}, follow=True)

    assert response.status_code == 200
    assert (fresh(unused).status, fresh(unused).cancel_reason) == ("cancelled", "管理后台作废")
    assert fresh(used).status == "redeemed"
    messages = [str(m) for m in response.context["messages"]]
    assert messages[0] == "已作废 1 张优惠券。"
    assert used.code in messages[1]
