import re
import time

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from scrm.models import Role
from tests.factories import StaffFactory, UserFactory

PASSWORD = "pw-for-tests"
SECURITY = "/account/security/"


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """What the staff member's authenticator app shows (``steps_ahead`` 30-second steps on:
    a code is good once, so a second sign-in within the same step needs the next one)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    client = Client()
    client.force_login(user)
    page = client.post(SECURITY, {"action": "start"}).content.decode()
    assert 'src="data:image/svg+xml;base64,' in page
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    page = client.post(SECURITY, {"action": "confirm", "token": code(device)}).content.decode()
    device.refresh_from_db()
    assert device.confirmed is True
    return device, re.findall(r"<code>([a-z0-9]{8})</code>", page)


def sign_in(url: str, user) -> Client:
    client = Client()
    response = client.post(url, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def staff(tenant):
    return StaffFactory(tenant=tenant, role=Role.OWNER)


def test_enrolment_shows_a_qr_code_then_ten_backup_codes(staff):
    device, backup_codes = enrol(staff.user)

    assert len(backup_codes) == 10
    assert device.config_url.startswith("otpauth://totp/")


def test_a_wrong_code_does_not_turn_it_on(staff):
    client = Client()
    client.force_login(staff.user)
    client.post(SECURITY, {"action": "start"})

    page = client.post(SECURITY, {"action": "confirm", "token": "000000"}).content.decode()

    assert "验证码不正确" in page
    assert not TOTPDevice.objects.filter(user=staff.user, confirmed=True).exists()
    assert sign_in("/login/", staff.user).get("/dashboard/").status_code == 200


def test_sign_in_asks_for_the_code_after_the_password(staff):
    device, _codes = enrol(staff.user)
    client = sign_in("/login/", staff.user)

    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/login/verify/?next=/dashboard/"
    assert client.get("/api/v1/members/").json()["code"] == "otp_required"
    assert client.post("/login/verify/", {"token": "123456", "next": "/dashboard/"}
                       ).status_code == 400
    assert client.get("/dashboard/").status_code == 302
    time.sleep(1.1)  # after a wrong code, the next try waits a second (then 2, 4, ...)

    response = client.post("/login/verify/", {"token": code(device, steps_ahead=1),
                                              "next": "/dashboard/"})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/api/v1/members/").status_code == 200


def test_a_backup_code_works_once(staff):
    _device, backup_codes = enrol(staff.user)
    first = sign_in("/login/", staff.user)
    assert first.post("/login/verify/", {"token": backup_codes[0]}).status_code == 302
    assert first.get("/dashboard/").status_code == 200

    second = sign_in("/login/", staff.user)

    assert second.post("/login/verify/", {"token": backup_codes[0]}).status_code == 400
    assert second.get("/dashboard/").status_code == 302


def test_the_admin_login_honours_it(db):
    admin = UserFactory(is_superuser=True)
    device, _codes = enrol(admin)
    client = sign_in("/admin/login/", admin)

    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/verify/?next=/admin/"

    client.post("/login/verify/", {"token": code(device, steps_ahead=1), "next": "/admin/"})

    assert client.get("/admin/").status_code == 200


def test_the_verify_page_does_not_redirect_off_site(staff):
    device, _codes = enrol(staff.user)
    client = sign_in("/login/", staff.user)

    response = client.post("/login/verify/", {"token": code(device, steps_ahead=1),
                                              "next": "https://evil.example/"})

    assert response["Location"] == "/"


def test_turning_it_off_needs_a_current_code(staff):
    device, backup_codes = enrol(staff.user)
    client = Client()
    client.force_login(staff.user)
    client.post("/login/verify/", {"token": backup_codes[0]})

    client.post(SECURITY, {"action": "disable", "token": "000000"})
    assert TOTPDevice.objects.filter(user=staff.user).exists()
    time.sleep(1.1)
    client.post(SECURITY, {"action": "disable", "token": code(device, steps_ahead=1)})

    assert not TOTPDevice.objects.filter(user=staff.user).exists()
    assert sign_in("/login/", staff.user).get("/dashboard/").status_code == 200


def test_staff_without_it_sign_in_with_the_password_alone(staff):
    assert sign_in("/login/", staff.user).get("/dashboard/").status_code == 200
