"""Connecting an OA and a WeCom corp: secrets kept encrypted and never shown, and a check that
says in plain words what is wrong."""

from integrations.models import OAApp, WeComCorp
from integrations.sandbox import fixtures as demo
from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tests.integrations.conftest import APPID, CORPID

OA_APPS = "/api/v1/integrations/oa-apps/"
CORPS = "/api/v1/integrations/wecom-corps/"


def test_connecting_an_oa_checks_it_and_keeps_the_secret_encrypted(sandbox, api_client, tenant):
    response = api_client.post(OA_APPS, {
        "appid": APPID, "secret": demo.DEMO_MP_SECRET, "name": "演示公众号",
        "token": demo.DEMO_MP_TOKEN, "aes_key": demo.DEMO_MP_AES_KEY}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["appid"], body["check_status"], body["check_message"]) == (APPID, "ok", "")
    assert body["callback_url"].endswith(f"/wechat/mp/{APPID}/callback/")
    assert "secret" not in body
    assert demo.DEMO_MP_SECRET not in response.content.decode()
    with tenant_scope(tenant):
        app = OAApp.objects.get()
        assert demo.DEMO_MP_SECRET not in app.secret_encrypted
        assert AuditEntry.objects.filter(action="integrations.oa_connect").count() == 1


def test_a_wrong_secret_is_explained(sandbox, api_client):
    response = api_client.post(OA_APPS, {"appid": APPID, "secret": "0" * 32,
                                         "token": "abc123", "aes_key": demo.DEMO_MP_AES_KEY},
                               format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["check_status"] == "failed"
    assert "AppSecret 不正确" in body["check_message"]


def test_missing_callback_settings_are_named(sandbox, api_client):
    body = api_client.post(CORPS, {"corpid": CORPID, "secret": demo.DEMO_CONTACT_SECRET},
                           format="json").json()
    assert body["check_status"] == "failed"
    assert "Token" in body["check_message"]
    assert "EncodingAESKey" in body["check_message"]


def test_a_malformed_aes_key_is_refused_and_nothing_is_saved(sandbox, api_client, tenant):
    response = api_client.post(CORPS, {"corpid": CORPID, "secret": "s", "token": "abc123",
                                       "aes_key": "short"}, format="json")
    assert response.status_code == 400
    with tenant_scope(tenant):
        assert not WeComCorp.objects.exists()


def test_reconnecting_changes_credentials_without_repeating_them(sandbox, api_client, tenant):
    api_client.post(CORPS, {"corpid": CORPID, "secret": demo.DEMO_CONTACT_SECRET,
                            "token": demo.DEMO_WORK_TOKEN, "aes_key": demo.DEMO_WORK_AES_KEY},
                    format="json")
    response = api_client.post(CORPS, {"corpid": CORPID, "name": "新名字"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["check_status"]) == ("新名字", "ok")


def test_another_tenant_cannot_see_or_check_the_connection(sandbox, api_client, other_api_client):
    app_id = api_client.post(OA_APPS, {"appid": APPID, "secret": demo.DEMO_MP_SECRET},
                             format="json").json()["id"]
    assert other_api_client.get(OA_APPS).json() == []
    assert other_api_client.post(f"{OA_APPS}{app_id}/check/").status_code == 404
    assert other_api_client.post(f"{OA_APPS}{app_id}/sync/").status_code == 404


def test_the_connect_command_prints_the_callback_url(sandbox, tenant):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("connect_oa", "--tenant", tenant.slug, "--appid", APPID, "--secret",
                 demo.DEMO_MP_SECRET, "--token", demo.DEMO_MP_TOKEN, "--aes-key",
                 demo.DEMO_MP_AES_KEY, stdout=out)
    assert f"/wechat/mp/{APPID}/callback/" in out.getvalue()
    assert "check: ok" in out.getvalue()
