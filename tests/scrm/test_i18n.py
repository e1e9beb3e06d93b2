import pytest

UPSERT = "/api/v1/members/upsert/"
BAD_PHONE = {"identities": [{"kind": "phone", "value": "12345"}]}


def test_api_errors_are_chinese_by_default(api_client):
    response = api_client.post(UPSERT, BAD_PHONE, format="json")
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_phone", "message": "手机号格式不正确：12345"}


def test_api_errors_are_english_on_request(api_client):
    response = api_client.post(UPSERT, BAD_PHONE, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_phone", "message": "Invalid phone number: 12345"}


@pytest.mark.django_db
def test_admin_login_page_is_chinese_by_default(client):
    content = client.get("/admin/login/").content.decode()
    assert '<html lang="zh-hans"' in content
    assert "私域 SCRM" in content
    assert "登录" in content


@pytest.mark.django_db
def test_admin_login_page_is_english_on_request(client):
    content = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en"' in content
    assert "Log in" in content
    assert "Private-domain SCRM" in content


@pytest.mark.django_db
def test_language_switch_sets_english(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/admin/login/"})
    assert response.status_code == 302
    assert "Log in" in client.get("/admin/login/").content.decode()
