import pytest

from integrations.sandbox.pytest_plugin import (  # noqa: F401 - fixtures for these tests
    pytest_configure,
    wechat_sandbox,
    wechat_sandbox_local,
)
from integrations.sandbox.testing import sandbox_in_process, sandbox_server


@pytest.fixture
def sandbox():
    """The ``small`` fixture served on a loopback port (callbacks queued, not sent)."""
    with sandbox_server("small") as handle:
        yield handle


@pytest.fixture
def local_sandbox():
    """The ``small`` fixture in process: clients go through SandboxTransport, no sockets."""
    with sandbox_in_process("small") as handle:
        yield handle
