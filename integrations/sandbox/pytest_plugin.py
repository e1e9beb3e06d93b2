"""pytest fixtures for the sandbox.  Enable with ``-p integrations.sandbox.pytest_plugin``
(or import the fixtures into a conftest).

    @pytest.mark.wechat_sandbox("demo", followers=3, deliver="manual")
    def test_sync(wechat_sandbox):          # served on 127.0.0.1:<free port>
        client = wechat_sandbox.mp_client()

``wechat_sandbox_local`` is the same handle in process (no sockets).  Without the marker
both use the ``small`` fixture.
"""

from __future__ import annotations

import pytest

from .testing import sandbox_in_process, sandbox_server

MARKER = "wechat_sandbox(fixture='small', **overrides): fixture and overrides for the sandbox"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", MARKER)


def _arguments(request) -> tuple[object, dict]:
    marker = request.node.get_closest_marker("wechat_sandbox")
    if marker is None:
        return "small", {}
    fixture = marker.args[0] if marker.args else marker.kwargs.get("fixture", "small")
    overrides = {k: v for k, v in marker.kwargs.items() if k != "fixture"}
    return fixture, overrides


@pytest.fixture
def wechat_sandbox(request):
    fixture, overrides = _arguments(request)
    with sandbox_server(fixture, **overrides) as handle:
        yield handle


@pytest.fixture
def wechat_sandbox_local(request):
    fixture, overrides = _arguments(request)
    with sandbox_in_process(fixture, **overrides) as handle:
        yield handle
