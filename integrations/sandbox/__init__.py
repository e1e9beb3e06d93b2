"""A local WeChat Official Account + WeCom server for tests and the quick-start demo.

Django-free.  See README.md in this folder.
"""

from .callbacks import CallbackEvent, CallbackRequest
from .control_methods import SimResult
from .core import FakeWeChat
from .server import SandboxServer
from .transport import SandboxHostAdapter, SandboxTransport, mount

Sandbox = FakeWeChat

__all__ = [
    "CallbackEvent",
    "CallbackRequest",
    "FakeWeChat",
    "Sandbox",
    "SandboxHostAdapter",
    "SandboxServer",
    "SandboxTransport",
    "SimResult",
    "mount",
]
