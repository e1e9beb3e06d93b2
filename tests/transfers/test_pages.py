import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from integrations.transfers.models import ImportFile
from members.models import Member
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory
from tests.transfers.conftest import csv_bytes


@pytest.fixture
def staff(tenant):
    with tenant_scope(tenant):
        return {role: StaffFactory(tenant=tenant, role=role)
                for role in (Role.OWNER, Role.ANALYST, Role.GUIDE)}


def _login(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def test_an_operator_uploads_maps_checks_and_imports_from_the_dashboard(
        tenant, staff, django_capture_on_commit_callbacks):
    client = _login(staff[Role.OWNER])
    menu = client.get("/dashboard/").content.decode()
    assert 'href="/imports/"' in menu
    assert 'href="/exports/"' in menu
    response = client.post("/imports/", {"kind": "members", "file": SimpleUploadedFile(
        "会员.csv", csv_bytes([["手机", "名字", "备注"], ["13800138000", "王芳", "x"],
                             ["123", "坏", ""]]))})
    assert response.status_code == 302
    with tenant_scope(tenant):
        upload = ImportFile.objects.get()
    page = client.get(f"/imports/{upload.pk}/").content.decode()
    assert '<option value="phone" selected>' in page
    assert '<option value="name" selected>' in page

    client.post(f"/imports/{upload.pk}/", {"action": "mapping", "field_0": "phone",
                                           "field_1": "name", "field_2": "city"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{upload.pk}/", {"action": "check"})
    page = client.get(f"/imports/{upload.pk}/").content.decode()
    assert "手机号格式不正确：123" in page
    report = client.get(f"/imports/{upload.pk}/report.csv?phase=check")
    assert "手机号格式不正确：123" in b"".join(report.streaming_content).decode("utf-8-sig")
    with tenant_scope(tenant):
        assert not Member.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{upload.pk}/", {"action": "run"})
    with tenant_scope(tenant):
        assert list(Member.objects.values_list("name", "city")) == [("王芳", "x")]
        assert ImportFile.objects.get().status == "finished"
    assert "已完成" in client.get("/imports/").content.decode()


def test_the_exports_page_lists_downloads_and_guides_cannot_open_imports(
        tenant, staff, django_capture_on_commit_callbacks):
    analyst = _login(staff[Role.ANALYST])
    assert analyst.get("/imports/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert analyst.post("/exports/", {"kind": "members"}).status_code == 302
    page = analyst.get("/exports/").content.decode()
    link = page.split('href="/exports/download/')[1].split('"')[0]
    assert Client().get(f"/exports/download/{link}").status_code == 200
    assert _login(staff[Role.GUIDE]).get("/imports/").status_code == 403
