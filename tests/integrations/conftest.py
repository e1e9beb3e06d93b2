"""The app's WeChat and WeCom code against the project's sandbox, over real HTTP."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from integrations.models import OAApp, WeComCorp
from integrations.sandbox import fixtures as demo
from integrations.sandbox.testing import client_receiver, sandbox_server
from integrations.services.connections import oa_app_connect, wecom_corp_connect
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope

APPID, CORPID = demo.DEMO_MP_APPID, demo.DEMO_CORPID


@pytest.fixture
def sandbox_options() -> dict:
    """What a test changes in the sandbox's fixture (override in a test module)."""
    return {}


@pytest.fixture
def sandbox(settings, sandbox_options):
    """The ``small`` fixture on a loopback port, its clock at our now (callbacks carry
    fresh timestamps), every WeChat call of the app pointed at it."""
    options = {"now": timezone.now().isoformat(), "clock": "frozen", **sandbox_options}
    with sandbox_server("small", **options) as sb:
        settings.WECHAT_API_BASE_URL = sb.url
        settings.WECOM_API_BASE_URL = sb.url
        settings.WECHAT_RATE_LIMIT_STORAGE = "memory://"
        cache.clear()  # tokens from another sandbox run would be refused
        yield sb
    cache.clear()


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


@pytest.fixture
def oa_app(sandbox, actor, tenant) -> OAApp:
    with tenant_scope(tenant):
        return oa_app_connect(actor=actor, appid=APPID, secret=demo.DEMO_MP_SECRET,
                              name="演示公众号", token=demo.DEMO_MP_TOKEN,
                              aes_key=demo.DEMO_MP_AES_KEY, check=False)


@pytest.fixture
def corp(sandbox, actor, tenant) -> WeComCorp:
    with tenant_scope(tenant):
        return wecom_corp_connect(actor=actor, corpid=CORPID, secret=demo.DEMO_CONTACT_SECRET,
                                  name="演示企业", token=demo.DEMO_WORK_TOKEN,
                                  aes_key=demo.DEMO_WORK_AES_KEY,
                                  agent_id=str(demo.DEMO_AGENTID), check=False)


@pytest.fixture
def deliver(sandbox, django_capture_on_commit_callbacks):
    """Deliver the sandbox's pending callbacks to our views (no sockets), running the
    Celery work they queue; returns the deliveries."""
    sandbox.callbacks.receiver = client_receiver(Client())

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return sandbox.callbacks.flush()

    return run
