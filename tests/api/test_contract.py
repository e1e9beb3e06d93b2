"""The API against its own OpenAPI schema (schemathesis): requests generated from the schema,
sent with an API key holding every scope to a tenant with members, orders, tags, a segment and
coupons, must never get a 5xx nor an answer (status, content type, body) the schema does not
describe.  Half the cases put the seeded rows' ids in the path, so the found branches run too.

Part of the normal run (``-m contract`` selects it alone).  The schema comes from
drf-spectacular's generator (no request, no database), so it loads at collection.  Hypothesis
is driven here, one test per operation, rather than through schemathesis's pytest plugin (its
fixture-based loader does not work with pytest 9).  CONTRACT_EXAMPLES sets the examples per
operation: 5 by default, about a minute for the whole API; use more to search harder.
"""

import json
import os
from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scrm import access
from scrm.services import api_key_create
from scrm.wsgi import application
from tests.factories import TenantFactory

pytestmark = [pytest.mark.contract, pytest.mark.django_db]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "5"))
# The same examples on every run, so CI is reproducible; CONTRACT_RANDOM=1 explores afresh.
DERANDOMIZE = not os.environ.get("CONTRACT_RANDOM")


def _schema() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


SCHEMA = schemathesis.openapi.from_dict(_schema())
OPERATIONS = {f"{operation.method.upper()} {operation.path}": operation
              for operation in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(autouse=True)
def _in_process(settings):
    # No call may leave the machine: WeChat and WeCom answer "connection refused" at once.
    settings.WECHAT_API_BASE_URL = settings.WECOM_API_BASE_URL = "http://127.0.0.1:9"


@contextmanager
def _connection_kept():
    """As Django's test client does (which also reconnects the handlers after each of its
    requests, so this wraps the WSGI calls only): a request must not close the test's
    connection, and with it the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _created(client: APIClient, url: str, data: dict) -> dict:
    response = client.post(url, data, format="json")
    assert response.status_code in (200, 201), (url, response.json())
    return response.json()


def _seed(client: APIClient) -> dict:
    """A small tenant; the ids of its rows, by the names of the path parameters."""
    group = _created(client, "/api/v1/tag-groups/", {"name": "偏好"})
    tags = [_created(client, "/api/v1/tags/", {"group": group["id"], "name": name})
            for name in ("口红", "眼霜")]
    members, orders = [], []
    for number, (name, city) in enumerate((("王芳", "上海"), ("李雷", "北京"), ("韩梅梅", "上海"))):
        phone = f"1390000000{number}"
        members.append(_created(client, "/api/v1/members/", {
            "name": name, "city": city, "identities": [{"kind": "phone", "value": phone}]}))
        orders.append(_created(client, "/api/v1/orders/", {
            "order_no": f"NO{phone}", "channel": "pos", "paid_at": "2026-11-01T10:00:00+08:00",
            "amount_fen": 5000, "buyer": {"identities": [{"kind": "phone", "value": phone}]},
            "lines": [{"sku": "S1", "product": "口红", "quantity": 1, "price_fen": 5000}]}))
    for member in members[:2]:
        _created(client, f"/api/v1/members/{member['id']}/tags/", {"tag_id": tags[0]["id"]})
    segment = _created(client, "/api/v1/segments/", {
        "name": "口红爱好者", "expression": {"all": [{"tag": tags[0]["id"]}]}})
    template = _created(client, "/api/v1/coupons/templates/", {
        "code": "c100-20", "name": "满 100 减 20", "kind": "fixed", "amount_fen": 2000,
        "threshold_fen": 10000, "validity": "relative", "valid_days": 30, "total_stock": 100})
    coupons = [_created(client, "/api/v1/coupons/issue/", {"template": template["code"],
                                                           "member": member["id"]})
               for member in members]
    return {"member_id": members[0]["id"], "order_id": orders[0]["id"],
            "tag_id": tags[0]["id"], "group_id": group["id"], "segment_id": segment["id"],
            "template_id": template["id"], "code": coupons[0]["code"]}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The tenant, its API key with every scope and its rows, made once for the module in a
    transaction rolled back at its end; each test runs in a savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        tenant = TenantFactory(slug="acme", name="酒厂")
        _key, secret = api_key_create(tenant=tenant, name="contract",
                                      scopes=list(access.GRANTABLE_SCOPES))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        yield secret, _seed(client)
        transaction.set_rollback(True)


def _cases(operation, known: dict):
    """Cases with generated path parameters, and as many with the seeded rows' ids."""
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {name: value for name, value in known.items() if name in names}
    if not fixed:
        return operation.as_strategy()
    return st.one_of(operation.as_strategy(), operation.as_strategy(path_parameters=fixed))


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_the_operation_keeps_to_the_schema(label, seeded):
    secret, known = seeded
    headers = {"Authorization": f"Bearer {secret}"}

    @given(case=_cases(OPERATIONS[label], known))
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=DERANDOMIZE,
                         suppress_health_check=list(HealthCheck),
                         phases=[Phase.explicit, Phase.generate])
    def keeps_to_the_schema(case):
        case.call_and_validate(app=application, headers=headers, checks=CHECKS)

    with _connection_kept():
        keeps_to_the_schema()
