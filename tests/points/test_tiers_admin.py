"""The tier programme page of the admin: a programme and its levels saved in one go through
the service; overlapping thresholds shown on the page; readers cannot change it."""

from django.test import Client

from points.models import TierLevel, TierProgram
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory

ADD = "/admin/points/tierprogram/add/"
PREFIX = "levels"


def _form(levels: list[tuple[str, str, int]], **program) -> dict:
    data = {"name": "酒友会", "basis": "growth", "window_days": 365, "review_days": 365,
            "protection_days": 90, "max_downgrade_steps": 1, "growth_per_yuan": "1",
            "growth_checkin": 0, "growth_review": 0, "growth_referral": 0, "is_active": "on",
            f"{PREFIX}-TOTAL_FORMS": len(levels), f"{PREFIX}-INITIAL_FORMS": 0,
            f"{PREFIX}-MIN_NUM_FORMS": 0, f"{PREFIX}-MAX_NUM_FORMS": 1000, **program}
    for i, (code, name, threshold) in enumerate(levels):
        data.update({f"{PREFIX}-{i}-code": code, f"{PREFIX}-{i}-name": name,
                     f"{PREFIX}-{i}-threshold": threshold,
                     f"{PREFIX}-{i}-discount_percent": 100,
                     f"{PREFIX}-{i}-points_multiplier": "1", f"{PREFIX}-{i}-birthday_points": 0,
                     f"{PREFIX}-{i}-lottery_weight": 1, f"{PREFIX}-{i}-exclusive_coupons": "[]"})
    return data


def _client(tenant, role) -> Client:
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=role).user)
    return client


def test_an_owner_creates_a_programme_with_its_levels(tenant):
    client = _client(tenant, Role.OWNER)
    response = client.post(ADD, _form([("gold", "金卡", 5000), ("silver", "银卡", 0)]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(tenant):
        program = TierProgram.objects.get()
        assert list(TierLevel.objects.filter(program=program).order_by("rank").values_list(
            "rank", "code", "threshold")) == [(1, "silver", 0), (2, "gold", 5000)]
        assert all(level.tag_id for level in TierLevel.objects.all())
    assert client.get(f"/admin/points/tierprogram/{program.pk}/change/").status_code == 200


def test_overlapping_thresholds_are_shown_on_the_page(tenant):
    client = _client(tenant, Role.OWNER)
    response = client.post(ADD, _form([("silver", "银卡", 0), ("gold", "金卡", 0)]))
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert "门槛" in " ".join(errors)
    with tenant_scope(tenant):
        assert not TierProgram.objects.exists()


def test_an_analyst_reads_but_cannot_add(tenant):
    client = _client(tenant, Role.ANALYST)
    assert client.get("/admin/points/tierprogram/").status_code == 200
    assert client.post(ADD, _form([("silver", "银卡", 0)])).status_code == 403
    for url in ("membertier", "tierchange", "growthentry"):
        assert client.get(f"/admin/points/{url}/").status_code == 200
