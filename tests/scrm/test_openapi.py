import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern

from scrm.api.urls import urlpatterns
from scrm.models import Role
from tests.factories import StaffFactory
from tests.members.test_api_orders import order_payload


def api_paths() -> set[str]:
    """The /api/v1/ routes as OpenAPI writes them: ``<int:member_id>`` → ``{member_id}``."""
    return {
        "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        for pattern in urlpatterns
        if isinstance(pattern, URLPattern)
    }


def test_schema_documents_every_api_path(db):
    response = Client().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {path for path in schema["paths"] if path.startswith("/api/v1/")} == api_paths()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": "Tenant API key"}
    create = schema["paths"]["/api/v1/orders/"]["post"]
    assert {"200", "201"} <= set(create["responses"])


def test_schema_builds_without_warnings_and_validates(db, tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target),
                 stdout=StringIO(), stderr=StringIO())

    assert "/api/v1/members/{member_id}/merge/" in target.read_text()


def test_docs_page_renders(db):
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger" in page.lower()
    assert "<script>" not in page  # the start-up script is a file, as the CSP requires
    assert "/api/schema/" in Client().get("/api/docs/?script=").content.decode()
    assert "cdn." not in page  # the Swagger UI assets are served from the installed package
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


def _members(api_client, start: int, count: int) -> None:
    for n in range(start, start + count):
        phone = f"1380013{n:04d}"
        response = api_client.post("/api/v1/orders/", order_payload(
            order_no=f"TM-{n}", buyer={"identities": [
                {"kind": "phone", "value": phone},
                {"kind": "wechat_openid", "app_id": "wx1", "value": f"o{n}"}]}),
            format="json")
        assert response.status_code == 201, response.json()


# The request's savepoint and its release (the key's lookup and its last-used stamp were
# done by the requests before), then one query each for the page and each prefetched
# relation: members' identities and stats, orders' lines.
MEMBER_LIST_QUERIES = 5
ORDER_LIST_QUERIES = 4


@pytest.mark.parametrize("count", [1, 12])
def test_member_list_queries_do_not_grow_with_members(api_client, store,
                                                      django_assert_num_queries, count):
    _members(api_client, 0, count)

    with django_assert_num_queries(MEMBER_LIST_QUERIES):
        response = api_client.get("/api/v1/members/")

    assert len(response.json()["results"]) == count
    assert all(len(member["identities"]) == 2 for member in response.json()["results"])
    assert all(member["stats"]["order_count"] == 1 for member in response.json()["results"])


@pytest.mark.parametrize("count", [1, 12])
def test_order_list_queries_do_not_grow_with_orders(api_client, store,
                                                    django_assert_num_queries, count):
    _members(api_client, 0, count)

    with django_assert_num_queries(ORDER_LIST_QUERIES):
        response = api_client.get("/api/v1/orders/")

    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [1, 12])
def test_member_list_for_staff_does_not_grow_either(api_client, tenant, store,
                                                    django_assert_max_num_queries, count):
    _members(api_client, 0, count)
    client = Client()
    client.force_login(StaffFactory(tenant=tenant, role=Role.OWNER).user)

    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/members/")

    assert len(response.json()["results"]) == count
