"""The integrations page while a sync runs: the connection's row refreshes as a whole, so
its last error appears without reloading the page."""

from integrations.models import OAApp
from integrations.services.followers import JOB_KIND
from scrm.models import Job
from scrm.tenancy import tenant_scope


def test_a_running_sync_refreshes_its_row_with_the_last_error(shop, as_role):
    tenant = shop["tenant"]
    with tenant_scope(tenant):
        app = OAApp.objects.create(tenant=tenant, appid="wx0001", name="品牌服务号",
                                   secret_encrypted="x")
        job = Job.objects.create(tenant=tenant, kind=JOB_KIND, status=Job.Status.RUNNING,
                                 params={"app_id": app.pk}, total=1000, done=250)
    owner = as_role("owner")
    row_url = f"/integrations/oa/{app.pk}/row/"
    page = owner.get("/integrations/").content.decode()
    assert f'hx-get="{row_url}"' in page

    with tenant_scope(tenant):
        OAApp.objects.filter(pk=app.pk).update(last_error="40001 invalid credential")
        Job.objects.filter(pk=job.pk).update(done=600)
    row = owner.get(row_url).content.decode()
    assert "40001 invalid credential" in row
    assert "600 / 1,000" in row or "600 / 1000" in row
    assert f'hx-get="{row_url}"' in row
    assert 'hx-get="/jobs/' not in row  # one poll for the row, not one more for its job

    with tenant_scope(tenant):
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="stopped")
    finished = owner.get(row_url).content.decode()
    assert "hx-get" not in finished
    assert "40001 invalid credential" in finished


def test_a_guide_cannot_read_a_connection_row(shop, as_role):
    tenant = shop["tenant"]
    with tenant_scope(tenant):
        app = OAApp.objects.create(tenant=tenant, appid="wx0002", secret_encrypted="x")
    assert as_role("guide").get(f"/integrations/oa/{app.pk}/row/").status_code in (302, 403)
    assert as_role("owner").get("/integrations/oa/999999/row/").status_code == 404
