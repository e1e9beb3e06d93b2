"""Request, reply and route types shared by the endpoint modules."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring as quote  # noqa: F401 - the C-accelerated quoter
from urllib.parse import parse_qsl

from .errors import ApiError

MP_HOST = "api.weixin.qq.com"
WORK_HOST = "qyapi.weixin.qq.com"
OPEN_HOST = "open.weixin.qq.com"
MP_WEB_HOST = "mp.weixin.qq.com"
HOSTS = {MP_HOST: "mp", WORK_HOST: "work", OPEN_HOST: "open", MP_WEB_HOST: "mpweb"}


def dumps(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class RawJson(str):
    """A payload an endpoint serialised itself (hot paths); the core sends it as is."""


@dataclass
class Request:
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    remote_addr: str = "127.0.0.1"
    platform: str = ""
    app_id: str | None = None  # appid or corpid, once known (for rules and the call log)
    token: object = None
    app: object = None  # MpApp, or (Corp, CorpApp) for WeCom
    rule_ids: list[str] = field(default_factory=list)
    post_actions: list[dict] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    _json: object = None

    @classmethod
    def build(cls, method: str, host: str, path: str, query: str | dict | None,
              headers: dict | None, body: bytes | str | None, remote_addr: str = "127.0.0.1"):
        if isinstance(query, str):
            query = dict(parse_qsl(query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        if isinstance(body, str):
            body = body.encode()
        return cls(method.upper(), host, path, dict(query or {}), lowered, body or b"",
                   remote_addr)

    def json(self) -> dict:
        """The JSON body ({} when empty); 47001 when it is not a JSON object."""
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    value = json.loads(self.body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    raise ApiError(47001) from exc
                if not isinstance(value, dict):
                    raise ApiError(47001)
                self._json = value
        return self._json

    def param(self, name: str, default: object = None) -> object:
        """A value from the query string or, failing that, the JSON body."""
        if name in self.query:
            return self.query[name]
        try:
            return self.json().get(name, default)
        except ApiError:
            return default


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    errcode: int | None = None
    delay_s: float = 0.0
    reset: bool = False
    early_close: bool = False
    content_length: int | None = None  # set with early_close: the length that was promised
    after: list[Callable[[], None]] = field(default_factory=list)

    def run_after(self) -> None:
        hooks, self.after = self.after, []
        for hook in hooks:
            hook()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def html(body: str, status: int = 200, headers: list | None = None) -> Reply:
    return Reply(status, [("Content-Type", "text/html; charset=utf-8"), *(headers or [])],
                 body.encode())


def redirect(location: str, headers: list | None = None) -> Reply:
    return Reply(302, [("Location", location), *(headers or [])], b"")


@dataclass(frozen=True)
class Route:
    platform: str
    path: str
    handler: Callable
    auth: bool = True
    write: bool = False
    quota: str | None = None


ROUTES: dict[tuple[str, str], Route] = {}


def route(platform: str, path: str, *, auth: bool = True, write: bool = False,
          quota: str | None = None):
    """Register an endpoint.  ``write`` endpoints answer errcode 0 on MP success;
    ``quota`` names the counter the call is charged to."""

    def register(handler):
        ROUTES[(platform, path)] = Route(platform, path, handler, auth, write, quota)
        return handler

    return register


def require(condition: bool, errcode: int, detail: str | None = None) -> None:
    if not condition:
        raise ApiError(errcode, detail=detail)


def as_int(value: object, errcode: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(errcode) from exc
