from datetime import timedelta

import pytest
from django.test import Client

from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory, UserFactory

PASSWORD = "pw-for-tests"


@pytest.fixture
def owner(tenant):
    return StaffFactory(tenant=tenant, role=Role.OWNER)


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def _sign_in(client, url, username, password):
    return client.post(url, {"username": username, "password": password})


def _fail(client, url, username, times):
    return [_sign_in(client, url, username, "wrong").status_code for _ in range(times)]


@pytest.mark.parametrize("url", ["/login/", "/guide/login/"])
def test_repeated_failures_lock_the_login_even_with_the_right_password(limit, owner, url):
    client = Client()
    username = owner.user.username

    assert _fail(client, url, username, 3) == [200, 200, 429]
    response = _sign_in(client, url, username, PASSWORD)

    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    page = response.content.decode()
    assert "登录失败次数过多" in page
    assert "15 分钟后" in page
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_locked_too(limit, db):
    admin = UserFactory(is_superuser=True)
    client = Client()

    assert _fail(client, "/admin/login/", admin.username, 3)[-1] == 429
    response = _sign_in(client, "/admin/login/", admin.username, PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_ends_after_the_cool_off(limit, owner):
    from axes.models import AccessAttempt

    client = Client()
    _fail(client, "/login/", owner.user.username, 3)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - timedelta(minutes=16))

    response = _sign_in(client, "/login/", owner.user.username, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.user.pk)


def test_another_address_is_not_locked_out(limit, owner):
    _fail(Client(REMOTE_ADDR="10.0.0.1"), "/login/", owner.user.username, 3)

    response = _sign_in(Client(REMOTE_ADDR="10.0.0.2"), "/login/", owner.user.username, PASSWORD)

    assert response.status_code == 302


def test_a_forwarded_for_header_does_not_give_a_fresh_address(limit, owner):
    client = Client()
    for n in range(3):
        client.post("/login/", {"username": owner.user.username, "password": "wrong"},
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    response = _sign_in(client, "/login/", owner.user.username, PASSWORD)

    assert response.status_code == 429


def test_an_owner_unlocks_their_staff_and_it_is_audited(limit, tenant, owner):
    colleague = StaffFactory(tenant=tenant, role=Role.CUSTOMER_SERVICE)
    _fail(Client(), "/login/", colleague.user.username, 3)
    boss = Client()
    boss.force_login(owner.user)
    assert "解除锁定" in boss.get("/settings/staff/").content.decode()

    response = boss.post(f"/settings/staff/{colleague.pk}/unlock/")

    assert response.status_code == 302
    assert _sign_in(Client(), "/login/", colleague.user.username, PASSWORD).status_code == 302
    with tenant_scope(tenant):
        actions = list(AuditEntry.objects.filter(target_id=colleague.pk)
                       .values_list("action", flat=True).order_by("pk"))
    assert "auth.locked_out" in actions
    assert actions[-2:] == ["auth.unlock", "auth.login"]


def test_staff_without_staff_management_cannot_unlock(limit, tenant, owner):
    _fail(Client(), "/login/", owner.user.username, 3)
    analyst = Client()
    analyst.force_login(StaffFactory(tenant=tenant, role=Role.ANALYST).user)

    response = analyst.post(f"/settings/staff/{owner.pk}/unlock/")

    assert response.status_code == 403
    assert _sign_in(Client(), "/login/", owner.user.username, PASSWORD).status_code == 429


def test_another_tenants_staff_cannot_be_unlocked(limit, tenant, other_tenant, owner):
    rival = StaffFactory(tenant=other_tenant, role=Role.OWNER)
    _fail(Client(), "/login/", rival.user.username, 3)
    boss = Client()
    boss.force_login(owner.user)

    assert boss.post(f"/settings/staff/{rival.pk}/unlock/").status_code == 404
    assert _sign_in(Client(), "/login/", rival.user.username, PASSWORD).status_code == 429


def test_a_superuser_unlocks_in_the_admin(limit, owner):
    from axes.models import AccessAttempt

    _fail(Client(), "/login/", owner.user.username, 3)
    admin = Client()
    admin.force_login(UserFactory(is_superuser=True))
    attempt = AccessAttempt.objects.get(username=owner.user.username)

    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert _sign_in(Client(), "/login/", owner.user.username, PASSWORD).status_code == 302
