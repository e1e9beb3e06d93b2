"""Helpers for tests: a sandbox on a loopback port, or in process, with wechatpy clients
already pointed at it.

    with sandbox_server("small", followers=3, page_size=2) as sb:
        client = sb.mp_client()
        assert list(client.user.iter_followers()) == sb.openids(range(3))
        result = sb.simulate_mp("subscribe")          # any FakeWeChat method works on sb
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from .core import FakeWeChat
from .server import SandboxServer
from .transport import mount


@dataclass
class SandboxHandle:
    """``.url``, ``.core`` and every method of the core (``sb.advance(21)``,
    ``sb.simulate_work(...)``, ``sb.callbacks.build(...)``) on one object."""

    core: FakeWeChat
    url: str | None = None
    server: SandboxServer | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def mount(self, target, *, prefix_host: bool = False):
        """Point a requests.Session, wechatpy client or WeChatOAuth at this sandbox."""
        if self.url is None:
            return mount(target, core=self.core)
        return mount(target, base_url=self.url, prefix_host=prefix_host)

    def session(self) -> requests.Session:
        return self.mount(requests.Session())

    def mp_client(self, appid: str | None = None, **kwargs: Any):
        from wechatpy import WeChatClient

        app = self.core._app(appid)
        kwargs.setdefault("timeout", (3.05, 10))
        return self.mount(WeChatClient(app.appid, app.secret, **kwargs))

    def work_client(self, corpid: str | None = None, app: str | None = None, **kwargs: Any):
        from wechatpy.work import WeChatClient

        corp = self.core._corp(corpid)
        corp_app = corp.apps[app] if app else next(iter(corp.apps.values()))
        kwargs.setdefault("timeout", (3.05, 10))
        return self.mount(WeChatClient(corp.corpid, corp_app.secret, **kwargs))

    def oauth(self, appid: str | None = None, *,
              redirect_uri: str = "http://testserver/wechat/oauth/done/",
              scope: str = "snsapi_base", state: str = ""):
        from wechatpy.oauth import WeChatOAuth

        app = self.core._app(appid)
        return self.mount(WeChatOAuth(app.appid, app.secret, redirect_uri, scope, state))

    def openids(self, persons, appid: str | None = None) -> list[str]:
        return [self.core.openid(p, appid) for p in persons]


def client_receiver(client):
    """A callback receiver that hands each delivery to a Django-style test client
    (anything with ``generic(method, path, data, content_type=...)``), so ``sync`` delivery
    reaches the app's views without sockets::

        sb.callbacks.receiver = client_receiver(django.test.Client())
    """

    def receive(request):
        response = client.generic(request.method, request.path_with_query, request.body,
                                  content_type=request.headers.get("Content-Type", "text/xml"))
        return response.status_code, response.content

    return receive


@contextmanager
def sandbox_server(fixture: str | dict | None = "demo", *, host: str = "127.0.0.1",
                   port: int = 0, **overrides: Any) -> Iterator[SandboxHandle]:
    """A sandbox serving HTTP on ``host:port`` (a free port by default) for the block."""
    core = FakeWeChat(fixture, **overrides)
    server = SandboxServer(core, host, port).start()
    try:
        yield SandboxHandle(core, server.url, server)
    finally:
        server.stop()
        core.close()


@contextmanager
def sandbox_in_process(fixture: str | dict | None = "demo",
                       **overrides: Any) -> Iterator[SandboxHandle]:
    """The same handle without sockets: clients are mounted with ``SandboxTransport``."""
    core = FakeWeChat(fixture, **overrides)
    try:
        yield SandboxHandle(core)
    finally:
        core.close()
