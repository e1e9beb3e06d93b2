"""The guide's WeCom OAuth sign-in is audited like the others, and so is a refused one."""

from urllib.parse import parse_qs, urlsplit

import requests
from django.test import Client

from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory
from tests.integrations.conftest import (  # noqa: F401  (fixtures)
    CORPID,
    actor,
    corp,
    sandbox,
    sandbox_options,
)


def sign_in(client: Client, userid: str):
    start = client.get(f"/guide/login/wecom/{CORPID}/")
    answer = requests.get(start["Location"].split("#")[0] + f"&fake_userid={userid}",
                          allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    return client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})


def test_wecom_sign_ins_and_refusals_are_recorded(sandbox, corp, tenant):  # noqa: F811
    with tenant_scope(tenant):
        guide = StaffFactory(tenant=tenant, role=Role.GUIDE, wecom_userid="guide001")
    assert sign_in(Client(), "guide001").status_code == 302
    assert sign_in(Client(), "guide002").status_code == 403
    with tenant_scope(tenant):
        rows = list(AuditEntry.objects.filter(action__startswith="auth.").order_by("pk")
                    .values_list("action", "actor", "data"))
    assert rows == [
        ("auth.login", f"staff:{guide.pk}", {"via": "wecom_oauth"}),
        ("auth.login_failed", "anonymous", {"via": "wecom_oauth", "wecom_userid": "guide002"}),
    ]
