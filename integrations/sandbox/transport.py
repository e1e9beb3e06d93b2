"""``requests`` adapters that point WeChat's hosts at the sandbox.

* ``SandboxTransport(core)``: in process, no sockets; calls ``core.handle_request``.
* ``SandboxHostAdapter(base_url)``: over HTTP; rewrites ``https://<host>/<path>`` to
  ``<base_url>/<path>`` with an ``X-Original-Host`` header (WECHAT.md §2.4), or to
  ``<base_url>/<host>/<path>`` with ``prefix_host=True``.

``mount(target, core=..., base_url=...)`` mounts either on a ``requests.Session``, a wechatpy
client or a ``WeChatOAuth`` (both keep their session in ``_http``).
"""

from __future__ import annotations

import io
import time
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from .wire import HOSTS


class SandboxTransport(BaseAdapter):
    def __init__(self, core):
        super().__init__()
        self.core = core

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        reply = self.core.handle_request(request.method, parts.netloc, parts.path, parts.query,
                                         dict(request.headers), body)
        try:
            read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
            if reply.delay_s:
                if read_timeout is not None and reply.delay_s > read_timeout:
                    time.sleep(read_timeout)
                    raise requests.ReadTimeout("sandbox fault: delay", request=request)
                time.sleep(reply.delay_s)
            if reply.reset:
                raise requests.ConnectionError(
                    ConnectionResetError(104, "Connection reset by peer"), request=request)
            if reply.early_close:
                raise requests.exceptions.ChunkedEncodingError(
                    "sandbox fault: connection closed mid-body", request=request)
            return self._response(request, reply)
        finally:
            reply.run_after()

    def _response(self, request, reply) -> requests.Response:
        response = requests.Response()
        response.status_code = reply.status
        try:
            response.reason = HTTPStatus(reply.status).phrase
        except ValueError:
            response.reason = "Unknown"
        response.headers = CaseInsensitiveDict(reply.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(reply.body)
        response._content = reply.body
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        pass


class SandboxHostAdapter(HTTPAdapter):
    def __init__(self, base_url: str, *, prefix_host: bool = False, **kwargs):
        self.base_url = base_url.rstrip("/")
        self.prefix_host = prefix_host
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.headers["X-Original-Host"] = parts.netloc
        prefix = f"/{parts.netloc}" if self.prefix_host else ""
        query = f"?{parts.query}" if parts.query else ""
        request.url = f"{self.base_url}{prefix}{parts.path}{query}"
        return super().send(request, **kwargs)


def mount(target, *, core=None, base_url: str | None = None, prefix_host: bool = False):
    """Mount the sandbox for every WeChat host on ``target`` and return ``target``."""
    if (core is None) == (base_url is None):
        raise ValueError("give exactly one of core= (in process) or base_url= (HTTP)")
    session = getattr(target, "_http", target)
    if core is not None:
        adapter = SandboxTransport(core)
    else:
        adapter = SandboxHostAdapter(base_url, prefix_host=prefix_host)
    for host in HOSTS:
        session.mount(f"https://{host}/", adapter)
        session.mount(f"http://{host}/", adapter)
    return target
