import secrets

import pytest
from django.test import Client
from rest_framework.test import APIClient

from scrm.models import Role
from tests.conftest import client_for
from tests.factories import StaffFactory

MEMBERS = "/api/v1/members/"
ORDERS_BULK = "/api/v1/orders/bulk/"


@pytest.fixture
def limits(settings):
    settings.API_RATE_LIMIT_ENABLED = True
    settings.API_RATE_LIMIT_KEY = "3/minute"
    settings.API_RATE_LIMIT_BULK = "2/minute"
    settings.API_RATE_LIMIT_IP = "2/minute"
    settings.API_RATE_LIMIT_KEY_OVERRIDES = {}
    return settings


def _address() -> str:
    # Counters live in the shared Redis: each test calls from an address of its own.
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def test_a_key_over_its_rate_gets_429_with_retry_after(limits, tenant, other_tenant):
    client, other = client_for(tenant), client_for(other_tenant)
    assert [client.get(MEMBERS).status_code for _ in range(3)] == [200, 200, 200]

    response = client.get(MEMBERS)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "rate_limited"
    assert response.json()["message"].startswith("请求过于频繁")
    assert other.get(MEMBERS).status_code == 200


def test_the_message_follows_the_language(limits, tenant):
    client = client_for(tenant)
    for _ in range(3):
        client.get(MEMBERS)

    response = client.get(MEMBERS, HTTP_ACCEPT_LANGUAGE="en")

    seconds = response["Retry-After"]
    assert response.json()["message"] == f"Too many requests; try again in {seconds} seconds."


def test_bulk_endpoints_have_their_own_allowance(limits, tenant):
    client = client_for(tenant)
    for _ in range(3):
        client.get(MEMBERS)
    assert client.get(MEMBERS).status_code == 429

    # Bad bodies (400) show the request got past the limit to the view.
    assert [client.post(ORDERS_BULK, {"orders": []}, format="json").status_code
            for _ in range(3)] == [400, 400, 429]


def test_a_partner_key_can_have_a_higher_rate(limits, tenant):
    client = client_for(tenant)
    prefix = client._credentials["HTTP_AUTHORIZATION"].split("_")[1]
    limits.API_RATE_LIMIT_KEY_OVERRIDES = {prefix: "5/minute"}

    codes = [client.get(MEMBERS).status_code for _ in range(6)]

    assert codes == [200] * 5 + [429]


def test_wrong_keys_are_limited_by_address_but_valid_keys_are_not(limits, tenant):
    address = _address()
    guesser = APIClient(REMOTE_ADDR=address)
    guesser.credentials(HTTP_AUTHORIZATION="Bearer sk_nope_guess")

    codes = [guesser.get(MEMBERS).status_code for _ in range(3)]

    assert codes == [401, 401, 429]
    partner = client_for(tenant)
    assert partner.get(MEMBERS, REMOTE_ADDR=address).status_code == 200


def test_dashboard_sessions_are_limited_by_address(limits, tenant):
    client = Client(REMOTE_ADDR=_address())
    client.force_login(StaffFactory(tenant=tenant, role=Role.OWNER).user)

    codes = [client.get(MEMBERS).status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    client.defaults["REMOTE_ADDR"] = _address()
    assert client.get(MEMBERS).status_code == 200


def test_limits_can_be_switched_off(limits, tenant):
    limits.API_RATE_LIMIT_ENABLED = False
    client = client_for(tenant)

    assert {client.get(MEMBERS).status_code for _ in range(5)} == {200}
