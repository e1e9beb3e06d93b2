"""The sandbox core: state, clock, rules and ``handle()``.

``FakeWeChat.handle(method, host, path, query, headers, body) -> (status, headers, body)``
is the whole server; the HTTP server, the in-process requests adapter and the control API
are thin layers over it.  Every check follows WECHAT.md §4.3: pre-auth fault rules, the
access token, quotas, post-auth fault rules, then the endpoint's own validation and logic.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from . import control, fixtures, routes, work_transfer  # noqa: F401 - routes registers
from .callbacks import CallbackEvent, Emitter, Target
from .clock import Clock
from .control_methods import ControlMethods
from .crypto import MessageCrypto
from .errors import MP_JSON, WORK_JSON, ApiError, error_text
from .faults import Faults, post_process
from .ids import Rng
from .quota import Quotas
from .tokens import Tokens
from .wire import HOSTS, ROUTES, RawJson, Reply, Request, dumps

CONTROL_PREFIX = "/__fake__/"
CALL_LOG_SIZE = 5000


def resolve_host(headers: dict[str, str], path: str) -> tuple[str | None, str]:
    """WECHAT.md §4.2: X-Original-Host, then a first path segment naming a known host, then
    the Host header.  A host segment is stripped from the path whichever wins."""
    segment, _, rest = path.lstrip("/").partition("/")
    if segment in HOSTS:
        path = "/" + rest
    original = (headers.get("x-original-host") or "").split(":")[0]
    if original in HOSTS:
        return original, path
    if segment in HOSTS:
        return segment, path
    host = (headers.get("host") or "").split(":")[0]
    return (host if host in HOSTS else None), path


class FakeWeChat(ControlMethods):
    def __init__(self, fixture: str | dict | None = None, **overrides: Any):
        self.lock = threading.RLock()
        self.callbacks: Emitter | None = None
        self.load(fixture, **overrides)

    # -- state ----------------------------------------------------------------------------

    def load(self, fixture: str | dict | None = None, **overrides: Any) -> None:
        """Replace the whole state with a fixture (a name, a path, or a dict) plus overrides."""
        with self.lock:
            self._fixture = fixture
            self._overrides = overrides
            self._build(fixtures.resolve(fixture, **overrides))

    def reset(self, seed: int | None = None) -> None:
        """Rebuild the loaded fixture from scratch (optionally with another seed)."""
        overrides = dict(self._overrides)
        if seed is not None:
            overrides["seed"] = seed
        with self.lock:
            self._overrides = overrides
            self._build(fixtures.resolve(self._fixture, **overrides))

    def _build(self, spec: dict) -> None:
        receiver = self.callbacks.receiver if self.callbacks else None
        if self.callbacks is not None:
            self.callbacks.close()
        self.spec = spec
        self.seed = int(spec.get("seed", 1))
        self.clock = Clock(spec.get("now") or "2025-01-01T09:00:00+08:00",
                           spec.get("clock", "frozen"))
        for purpose in ("ids", "tokens", "crypto", "faults", "errors"):
            setattr(self, f"rng_{purpose}", Rng(self.seed, purpose))
        self.tokens = Tokens(self)
        self.quotas = Quotas(self.clock)
        self.faults = Faults(self)
        cb = spec.get("callbacks") or {}
        self.callbacks = Emitter(self, deliver=cb.get("deliver", "sync"),
                                 timeout_s=cb.get("timeout_s", 5.0),
                                 attempts=cb.get("attempts", 3),
                                 retry_delays_s=cb.get("retry_delays_s"))
        self.callbacks.receiver = receiver
        self._calls: deque[dict] = deque(maxlen=int(spec.get("call_log_size", CALL_LOG_SIZE)))
        self._call_seq = 0
        self._outbox: list[dict] = []
        self.oauth_codes: dict[str, dict] = {}
        self.sns_tokens: dict[str, dict] = {}
        self.sns_refresh_tokens: dict[str, dict] = {}
        self.default_browser_person: int | None = None
        self._flush_needed = False
        fixtures.build(self, spec)

    @property
    def default_appid(self) -> str | None:
        return next(iter(self.mp_apps), None)

    @property
    def default_corpid(self) -> str | None:
        return next(iter(self.corps), None)

    def close(self) -> None:
        self.callbacks.close()

    # -- the request path -----------------------------------------------------------------

    def handle(self, method: str, host: str | None, path: str, query: str | dict | None = None,
               headers: dict | None = None, body: bytes | str | None = None,
               remote_addr: str = "127.0.0.1") -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request.  ``delay`` faults sleep here; ``reset_connection`` raises
        ConnectionResetError; callbacks an API call caused are sent before returning."""
        reply = self.handle_request(method, host, path, query, headers, body, remote_addr)
        try:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.reset:
                raise ConnectionResetError("sandbox fault: reset_connection")
            return reply.status, reply.headers, reply.body
        finally:
            reply.run_after()

    def handle_request(self, method: str, host: str | None, path: str,
                       query: str | dict | None = None, headers: dict | None = None,
                       body: bytes | str | None = None, remote_addr: str = "127.0.0.1") -> Reply:
        """Like ``handle`` but returns the Reply; the caller applies ``delay_s``/``reset`` and
        must call ``reply.run_after()`` once the response is sent."""
        headers = dict(headers or {})
        if host:
            headers.setdefault("host", host)
        req = Request.build(method, "", path, query, headers, body, remote_addr)
        req.host, req.path = resolve_host(req.headers, req.path)
        if req.path.startswith(CONTROL_PREFIX) or req.path.rstrip("/") == CONTROL_PREFIX[:-1]:
            return control.dispatch(self, req)
        started = time.perf_counter()
        with self.lock:
            reply = self._dispatch(req)
            self._log(req, reply, started)
            reply.after.extend(req.after)
            if self._flush_needed:
                self._flush_needed = False
                reply.after.append(self.callbacks.flush_deferred)
        return reply

    def _dispatch(self, req: Request) -> Reply:
        req.platform = HOSTS.get(req.host, "")
        if not req.platform:
            return Reply(404, [("Content-Type", "text/plain")], b"unknown host")
        route = ROUTES.get((req.platform, req.path))
        if route is None:
            if req.platform == "mp":
                return self._render_error(req, ApiError(40066))
            return Reply(404, [("Content-Type", "text/html")], b"")
        req.app_id = self._peek_app(req)
        try:
            reply = self._run(req, route)
        except ApiError as err:
            reply = self._render_error(req, err)
        if req.post_actions:
            post_process(reply, req.post_actions)
        return reply

    def _run(self, req: Request, route) -> Reply:
        reply = self.faults.apply("pre_auth", req)
        if reply is not None:
            return reply
        if route.auth:
            self._authenticate(req)
        endpoint = route.quota or req.path.removeprefix("/cgi-bin/").lstrip("/")
        if route.auth or route.quota:
            self.quotas.hit(req.platform, req.app_id or "-", endpoint)
        if req.platform == "work" and route.auth:
            self._work_preamble(req, endpoint)
        reply = self.faults.apply("post_auth", req)
        if reply is not None:
            return reply
        payload = route.handler(self, req)
        if isinstance(payload, Reply):
            return payload
        return self._render(req.platform, payload, route.write)

    def _peek_app(self, req: Request) -> str | None:
        token = self.tokens.by_value.get(req.query.get("access_token", ""))
        if token is not None:
            return token.owner
        for name in ("appid", "corpid"):
            if req.query.get(name):
                return req.query[name]
        if req.method == "POST" and req.path == "/cgi-bin/stable_token":
            value = req.param("appid")
            return value if isinstance(value, str) else None
        return None

    def _authenticate(self, req: Request) -> None:
        token = self.tokens.check(req.query.get("access_token"), req.platform)
        req.token, req.app_id = token, token.owner
        if req.platform == "mp":
            req.app = self.mp_apps[token.owner]
            return
        corp = self.corps[token.owner]
        app = corp.apps[token.app_name]
        req.app = (corp, app)
        if req.path.startswith("/cgi-bin/externalcontact/") and not app.can_external_contact:
            raise ApiError(48002)

    def _work_preamble(self, req: Request, endpoint: str) -> None:
        corp, _ = req.app
        if self.quotas.concurrency_limit is not None:
            self.quotas.enter(corp.corpid, endpoint)
            req.after.append(lambda: self._leave(corp.corpid, endpoint))
        if corp.transfers:
            events = work_transfer.settle(self, corp)
            if events:
                self.defer(events)

    def _leave(self, scope: str, endpoint: str) -> None:
        with self.lock:
            self.quotas.leave(scope, endpoint)

    def _render(self, platform: str, payload: dict, write: bool) -> Reply:
        if isinstance(payload, RawJson):
            return Reply(200, [("Content-Type", MP_JSON)], payload.encode(), errcode=0)
        if platform == "work":
            return Reply(200, [("Content-Type", WORK_JSON)],
                         dumps({"errcode": 0, "errmsg": "ok", **payload}), errcode=0)
        body = {"errcode": 0, "errmsg": "ok", **payload} if write else payload
        return Reply(200, [("Content-Type", MP_JSON)], dumps(body), errcode=0)

    def _render_error(self, req: Request, err: ApiError) -> Reply:
        code = err.errcode
        if req.platform == "work":
            text = error_text("work", code, err.errmsg, err.detail)
            rng = self.rng_errors
            hint = f"{self.clock.ts()}_{rng.integer(10, 99)}_{rng.hex(32)}"
            message = (f"{text}, hint: [{hint}], from ip: {req.remote_addr}, more info at "
                       f"https://open.work.weixin.qq.com/devtool/query?e={code}")
            headers = [("Content-Type", WORK_JSON), ("error-code", str(code)),
                       ("error-msg", message)]
        else:
            rng = self.rng_errors
            rid = f"{rng.hex(8)}-{rng.hex(8)}-{rng.hex(8)}"
            message = f"{error_text('mp', code, err.errmsg, err.detail)} rid: {rid}"
            headers = [("Content-Type", MP_JSON)]
        return Reply(200, headers, dumps({"errcode": code, "errmsg": message}), errcode=code)

    def _log(self, req: Request, reply: Reply, started: float) -> None:
        self._call_seq += 1
        token = req.query.get("access_token")
        self._calls.append({
            "id": self._call_seq, "ts": self.clock.ts(), "method": req.method,
            "host": req.host, "path": req.path,
            "query": {k: v for k, v in req.query.items() if k != "access_token"},
            "body": req.body[:4096].decode("utf-8", "replace"),
            "token": token[:16] if token else None, "app": req.app_id,
            "status": reply.status, "errcode": reply.errcode, "rule_ids": list(req.rule_ids),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        })

    # -- helpers for endpoints ------------------------------------------------------------

    def record_outbox(self, kind: str, **fields: Any) -> dict:
        row = {"id": len(self._outbox) + 1, "kind": kind, "ts": self.clock.ts(), **fields}
        self._outbox.append(row)
        return row

    def defer(self, events: list[CallbackEvent]) -> None:
        """Queue callbacks caused by an API call; sent after the response."""
        self.callbacks.defer(events)
        if self.callbacks.mode == "sync":
            self._flush_needed = True

    def work_event(self, corp, event: str, change: str, fields: list) -> CallbackEvent:
        app = self.callback_app(corp)
        return self.callbacks.new_event(
            platform="work", target=corp.corpid, kind=f"{event}/{change}", from_user="sys",
            fields=[("Event", event), ("ChangeType", change), *fields],
            app_name=app.name if app else None)

    @staticmethod
    def callback_app(corp):
        """The app whose callback URL receives customer-contact events."""
        apps = [a for a in corp.apps.values() if a.can_external_contact] or list(
            corp.apps.values())
        return next((a for a in apps if a.callback_url), apps[0] if apps else None)

    def callback_target(self, platform: str, target: str, app_name: str | None = None) -> Target:
        emitter = self.callbacks
        if platform == "mp":
            app = self.mp_apps[target]
            config, url, token, aes = app.callback, app.callback_url, app.token, \
                app.encoding_aes_key
            crypto, mode, to_user, agentid = MessageCrypto(token, aes, app.appid), \
                app.msg_mode, app.original_id, None
        else:
            corp = self.corps[target]
            corp_app = corp.apps[app_name] if app_name else self.callback_app(corp)
            config, url, token = corp_app.callback, corp_app.callback_url, corp_app.token
            crypto = MessageCrypto(token, corp_app.encoding_aes_key, corp.corpid)
            mode, to_user, agentid = "work", corp.corpid, corp_app.agentid
        return Target(url, crypto, token, mode, to_user, agentid,
                      float(config.get("timeout_s", emitter.timeout_s)),
                      int(config.get("attempts", emitter.attempts)),
                      list(config.get("retry_delays_s", emitter.retry_delays_s)))
