"""The RFM and lifecycle settings in the admin: saved through the services (so the same
rules hold and the change is audited), refused values shown on the page; runs read-only."""

from django.test import Client

from campaigns.rfm.models import LifecycleConfig, RfmConfig
from campaigns.rfm.services.runs import rfm_run_now
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory
from tests.rfm.conftest import NOW


def _client(tenant, role) -> Client:
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=role).user)
    return client


def _rfm_form(**changes) -> dict:
    return {"window_days": 365, "scoring": "quintile", "r_thresholds": "[]",
            "f_thresholds": "[]", "m_thresholds": "[]", "r_high": 3, "f_high": 3, "m_high": 3,
            **changes}


def test_the_owner_changes_the_rfm_settings_through_the_service(tenant):
    client = _client(tenant, Role.OWNER)
    page = client.get("/admin/rfm/rfmconfig/")
    assert page.status_code == 302
    url = page["Location"]
    response = client.post(url, _rfm_form(scoring="thresholds", r_thresholds="[7, 30, 60, 90]",
                                          f_thresholds="[2, 3, 5, 8]",
                                          m_thresholds="[100, 200, 300, 400]"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_scope(tenant):
        config = RfmConfig.objects.get()
        assert (config.scoring, config.r_thresholds) == ("thresholds", [7, 30, 60, 90])
        assert AuditEntry.objects.filter(action="rfm.config_update").count() == 1


def test_unordered_thresholds_are_shown_on_the_page(tenant):
    client = _client(tenant, Role.OWNER)
    url = client.get("/admin/rfm/rfmconfig/")["Location"]
    response = client.post(url, _rfm_form(f_thresholds="[5, 3, 8, 9]"))
    assert response.status_code == 200
    assert "f_thresholds 必须严格递增" in str(response.context["adminform"].form.errors)
    with tenant_scope(tenant):
        assert RfmConfig.objects.get().f_thresholds == []


def test_lifecycle_days_out_of_order_are_refused_on_the_page(tenant):
    client = _client(tenant, Role.OWNER)
    url = client.get("/admin/rfm/lifecycleconfig/")["Location"]
    form = {"new_days": 30, "loyal_orders": 5, "loyal_spend_fen": 0, "loyal_window_days": 365,
            "dormant_days": 120, "lost_days": 100}
    response = client.post(url, form)
    assert response.status_code == 200
    assert "流失天数" in str(response.context["adminform"].form.errors)
    assert client.post(url, {**form, "lost_days": 200}).status_code == 302
    with tenant_scope(tenant):
        assert (LifecycleConfig.objects.get().dormant_days,
                LifecycleConfig.objects.get().lost_days) == (120, 200)


def test_an_analyst_reads_runs_and_settings_but_changes_nothing(tenant, actor, known):
    with tenant_scope(tenant):
        done = rfm_run_now(actor=actor, now=NOW)
    client = _client(tenant, Role.ANALYST)
    assert client.get("/admin/rfm/rfmrun/").status_code == 200
    assert client.get(f"/admin/rfm/rfmrun/{done.pk}/change/").status_code == 200
    assert client.post(f"/admin/rfm/rfmrun/{done.pk}/delete/").status_code == 403
    url = client.get("/admin/rfm/rfmconfig/")["Location"]
    assert client.post(url, _rfm_form(window_days=30)).status_code == 403
    with tenant_scope(tenant):
        assert RfmConfig.objects.get().window_days == 365
