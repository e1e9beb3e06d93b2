import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def operator(tenant):
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    text = "\r\n".join(",".join(row) for row in rows) + "\r\n"
    return text.encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(api_client, *, kind: str, name: str, content: bytes) -> dict:
    response = api_client.post("/api/v1/imports/", {
        "kind": kind, "file": SimpleUploadedFile(name, content)}, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def body(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


@pytest.fixture
def run(api_client, django_capture_on_commit_callbacks):
    """POST an action (dry-run/start) and let the queued task run, as a worker would."""

    def go(upload_id: int, action: str, client=None) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = (client or api_client).post(f"/api/v1/imports/{upload_id}/{action}/")
        assert response.status_code == 202, response.json()
        return body((client or api_client).get(f"/api/v1/imports/{upload_id}/"))

    return go


@pytest.fixture
def scoped(tenant):
    def enter():
        return tenant_scope(tenant)

    return enter
