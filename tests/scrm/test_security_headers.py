import secrets
import subprocess
import sys

from django.test import Client

from scrm.models import Role
from tests.factories import StaffFactory


def test_pages_carry_the_security_headers(tenant):
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=Role.OWNER).user)

    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"]
                  .split(";") if part.strip())
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # a nonce only where a page has an inline script
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"


def test_the_session_cookie_is_http_only_and_same_site(tenant):
    staff = StaffFactory(tenant=tenant, role=Role.OWNER)
    client = Client()

    client.post("/login/", {"username": staff.user.username, "password": "pw-for-tests"})

    cookie = client.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_the_dashboard_has_no_inline_script(tenant):
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=Role.OWNER).user)

    page = client.get("/dashboard/").content.decode()

    assert "<script>" not in page
    assert " onclick=" not in page


def test_the_deploy_check_is_clean_with_production_settings():
    env = {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": "scrm.example.com", "SECURE_SSL_REDIRECT": "true",
           "SECURE_HSTS_PRELOAD": "true", "PATH": "/usr/bin:/bin"}

    # The security checks (the schema's own are in tests/api/test_contract.py).
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--tag",
                             "security", "--fail-level", "WARNING"], env=env, capture_output=True,
                            text=True, check=False)

    assert result.returncode == 0, result.stderr + result.stdout


def test_the_quick_start_over_http_keeps_cookies_usable():
    env = {"DEBUG": "true", "PATH": "/usr/bin:/bin"}

    result = subprocess.run([sys.executable, "-c", "import django, os; "
                             "os.environ['DJANGO_SETTINGS_MODULE']='scrm.settings'; "
                             "from django.conf import settings as s; "
                             "print(s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"],
                            env=env, capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["False", "0"]
