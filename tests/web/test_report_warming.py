"""The dashboard's report warmer: after it has run, an owner's panels read the tenant's
reports from the cache instead of aggregating a million rows; one broken report does not
stop the others; no tenant ever reads another's figures."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.services import member_upsert
from points.services.ledger import points_earn
from scrm import reports
from scrm.access import Actor
from scrm.models import Role
from scrm.reports import ALL, REPORTS, Report, report_key, reports_warm
from scrm.tasks import reports_warm_all_task, reports_warm_task
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory
from tests.web.conftest import login

pytestmark = pytest.mark.django_db

LIABILITY_TABLES = ("points_pointsaccount", "points_pointslot")


def earn(tenant, member, points: int) -> None:
    with tenant_scope(tenant):
        points_earn(actor=Actor(tenant=tenant), member=member, points=points, reason="test")


def liability_key(tenant) -> str:
    return report_key(tenant_id=tenant.pk, visible=ALL, name="liability")


def aggregates_run(client, url: str) -> tuple[str, list[str]]:
    """The page's content, and the queries it ran that read the points tables."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries if any(
        table in query["sql"] for table in LIABILITY_TABLES)]


@pytest.fixture
def rival(other_tenant):
    """Another tenant with an owner and one customer holding 777 points."""
    with tenant_scope(other_tenant):
        owner = StaffFactory(tenant=other_tenant, role=Role.OWNER, display_name="对手老板")
        member, _ = member_upsert(actor=Actor(tenant=other_tenant), identities=[
            {"kind": "phone", "value": "13700137000"}], profile={"name": "赵敏"})
    earn(other_tenant, member, 777)
    return {"tenant": other_tenant, "owner": owner}


def test_warmed_loyalty_panel_reads_the_cache_instead_of_aggregating(shop, as_role):
    earn(shop["tenant"], shop["mine"], 1234)
    owner = as_role("owner")

    assert reports_warm_all_task() == 1
    content, aggregates = aggregates_run(owner, "/dashboard/panels/loyalty/")
    assert aggregates == []
    assert "1,234" in content

    from django.core.cache import cache

    cache.delete(liability_key(shop["tenant"]))  # as when nothing has warmed it
    content, aggregates = aggregates_run(owner, "/dashboard/panels/loyalty/")
    assert aggregates != []
    assert "1,234" in content


def test_warming_fills_every_registered_report_and_period(shop):
    from django.core.cache import cache

    tenant = shop["tenant"]
    assert reports_warm_task(tenant.pk) == sum(len(r.variants()) for r in REPORTS.values())
    for report in REPORTS.values():
        for period in report.variants():
            key = report_key(tenant_id=tenant.pk, visible=ALL, name=report.name, period=period)
            assert cache.get(key) is not None, key


def test_warmed_members_panel_shows_the_owner_the_whole_tenant_and_a_guide_their_own(
        shop, as_role):
    reports_warm_all_task()
    owner = as_role("owner").get("/dashboard/panels/members/?period=7").content.decode()
    guide = as_role("guide").get("/dashboard/panels/members/?period=7").content.decode()
    total = '<div class="kpi"><div class="value">{}</div><div class="label">会员总数'
    assert total.format(2) in owner
    assert total.format(1) in guide


def test_a_failing_report_is_logged_and_the_others_are_still_warmed(shop, monkeypatch,
                                                                     caplog):
    from django.core.cache import cache

    def broken(*, actor):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(reports, "REPORTS", {"broken": Report("broken", broken), **REPORTS})
    tenant = shop["tenant"]
    with tenant_scope(tenant):
        result = reports_warm(tenant=tenant)

    assert result.failed == 1
    assert result.warmed == sum(len(r.variants()) for r in REPORTS.values())
    assert cache.get(report_key(tenant_id=tenant.pk, visible=ALL, name="broken")) is None
    assert cache.get(liability_key(tenant)) is not None
    assert "dashboard report broken" in caplog.text


def test_each_tenant_reads_only_its_own_warmed_figures(shop, as_role, rival):
    earn(shop["tenant"], shop["mine"], 1234)
    assert reports_warm_all_task() == 2

    ours = as_role("owner").get("/dashboard/panels/loyalty/").content.decode()
    theirs = login(rival["owner"]).get("/dashboard/panels/loyalty/").content.decode()
    assert "1,234" in ours
    assert "777" not in ours
    assert "777" in theirs
    assert "1,234" not in theirs


def test_warming_one_tenant_leaves_the_other_tenant_cold(shop, rival):
    from django.core.cache import cache

    reports_warm_task(shop["tenant"].pk)
    assert cache.get(liability_key(shop["tenant"])) is not None
    assert cache.get(liability_key(rival["tenant"])) is None


def test_warm_run_costs_nothing_when_no_report_is_registered(db, monkeypatch,
                                                             django_assert_num_queries):
    monkeypatch.setattr(reports, "REPORTS", {})
    with django_assert_num_queries(0):
        assert reports_warm_all_task() == 0


def test_warmed_entries_outlive_the_warming_interval(shop, settings):
    from django.core.cache import cache

    if not hasattr(cache, "ttl"):
        pytest.skip("the cache backend does not report time to live (no Redis)")
    reports_warm_task(shop["tenant"].pk)
    ttl = cache.ttl(liability_key(shop["tenant"]))
    assert ttl > 2 * settings.DASHBOARD_WARM_SECONDS
    assert ttl > settings.DASHBOARD_CACHE_SECONDS
