"""Expiry: coupons past their window become ``expired`` in batches; used and valid ones stay."""

from datetime import timedelta

from campaigns.coupons.models import Coupon
from campaigns.coupons.services import coupon_redeem, coupons_expire
from campaigns.coupons.tasks import coupons_expire_all_task
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope
from tests.coupons.conftest import fresh, issue, template_create
from tests.points.conftest import new_member


def _lapse(coupon: Coupon) -> None:
    with tenant_scope(coupon.tenant_id):
        Coupon.objects.filter(pk=coupon.pk).update(
            valid_from=coupon.issued_at - timedelta(days=31),
            valid_until=coupon.issued_at - timedelta(days=1))


def test_coupons_past_their_window_expire_in_batches(tenant, actor, member):
    template = template_create(actor, per_member_limit=0)
    due = [issue(actor, template, member) for _n in range(5)]
    valid = issue(actor, template, member)
    used = issue(actor, template, member)
    with tenant_scope(tenant):
        coupon_redeem(actor=actor, code=used.code, order_amount_fen=20000)
    for coupon in (*due, used):
        _lapse(coupon)

    with tenant_scope(tenant):
        assert coupons_expire(batch=2) == 5
        assert coupons_expire() == 0

    assert [fresh(c).status for c in due] == ["expired"] * 5
    assert (fresh(valid).status, fresh(used).status) == ("issued", "redeemed")


def test_the_hourly_task_expires_every_tenant_s_coupons(tenant, other_tenant, actor):
    theirs = Actor(tenant=other_tenant, scopes=frozenset(ALL_SCOPES))
    ours = issue(actor, template_create(actor), new_member(actor))
    their = issue(theirs, template_create(theirs), new_member(theirs))
    for coupon in (ours, their):
        _lapse(coupon)

    assert coupons_expire_all_task() == 2

    assert (fresh(ours).status, fresh(their).status) == ("expired", "expired")
