"""Signed, encrypted callbacks from the sandbox to the app's webhook (WECHAT.md §4.10).

Events come from simulated actions (or from API calls such as a template send), never from
thin air.  ``build(event)`` gives a ready request (for a Django test client, no sockets);
``deliver(event)`` posts it with the platform's retry rule, keeping the same CreateTime on
every attempt.  Delivery modes: ``sync`` (inside the simulation call), ``async`` (a
background thread) and ``manual`` (only queued; call ``deliver``/``flush`` yourself).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests

from .crypto import CryptoError, MessageCrypto, sha1_signature, xml_field

log = logging.getLogger(__name__)
MODES = ("sync", "async", "manual")
HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}


@dataclass
class CallbackEvent:
    id: str
    platform: str  # "mp" or "work"
    target: str  # appid or corpid
    kind: str  # e.g. "subscribe", "change_external_contact/add_external_contact"
    create_time: int
    from_user: str
    fields: list[tuple[str, object]]
    app_name: str | None = None  # the WeCom app whose callback receives it
    delivered: bool = False

    def inner_xml(self, to_user: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
            f"<FromUserName><![CDATA[{self.from_user}]]></FromUserName>"
            f"<CreateTime>{self.create_time}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>{render_fields(self.fields)}</xml>"
        )

    def as_dict(self) -> dict:
        return {"id": self.id, "platform": self.platform, "target": self.target,
                "app": self.app_name, "kind": self.kind, "create_time": self.create_time,
                "from_user": self.from_user, "delivered": self.delivered,
                "fields": dict(self.fields)}


def render_fields(fields: list[tuple[str, object]]) -> str:
    parts = []
    for name, value in fields:
        if value is None:
            continue
        if isinstance(value, list):
            parts.append(f"<{name}>{render_fields(value)}</{name}>")
        elif isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "".join(parts)


@dataclass
class CallbackRequest:
    method: str
    url: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    event_id: str | None = None
    expected: str | None = None  # URL verification: the body the app must answer

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def path_with_query(self) -> str:
        query = urlsplit(self.url).query
        return f"{self.path}?{query}" if query else self.path


@dataclass
class Delivery:
    id: str
    event_id: str
    kind: str
    target: str
    attempt: int
    request: CallbackRequest
    status: int | None = None
    response_body: bytes = b""
    duration_ms: float = 0.0
    outcome: str = ""
    passive_reply: str | None = None
    rule_id: str | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "event_id": self.event_id, "kind": self.kind,
                "target": self.target, "attempt": self.attempt, "url": self.request.url,
                "request_body": self.request.body.decode(errors="replace"),
                "status": self.status, "outcome": self.outcome,
                "response_body": self.response_body[:2000].decode(errors="replace"),
                "duration_ms": round(self.duration_ms, 2), "passive_reply": self.passive_reply,
                "rule_id": self.rule_id}


@dataclass
class Target:
    url: str | None
    crypto: MessageCrypto
    token: str
    mode: str  # plain | compat | safe | work
    to_user: str
    agentid: int | None
    timeout_s: float
    attempts: int
    retry_delays_s: list[float] = field(default_factory=list)


class Emitter:
    def __init__(self, sandbox, *, deliver: str = "sync", timeout_s: float = 5.0,
                 attempts: int = 3, retry_delays_s: list[float] | None = None):
        if deliver not in MODES:
            raise ValueError(f"deliver is one of {MODES}")
        self.sandbox = sandbox
        self.mode = deliver
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.retry_delays_s = list(retry_delays_s or [0, 0, 0])
        self.receiver: Callable[[CallbackRequest], tuple[int, bytes | str]] | None = None
        self.events: dict[str, CallbackEvent] = {}
        self.deliveries: list[Delivery] = []
        self.verifications: list[dict] = []
        self._pending: list[str] = []
        self._deferred: list[str] = []
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        self._session = requests.Session()
        self._event_seq = 0
        self._delivery_seq = 0

    # -- creating and routing events --------------------------------------------------------

    def new_event(self, *, platform: str, target: str, kind: str, from_user: str,
                  fields: list, app_name: str | None = None) -> CallbackEvent:
        self._event_seq += 1
        event = CallbackEvent(f"ev{self._event_seq}", platform, target, kind,
                              self.sandbox.clock.ts(), from_user, fields, app_name)
        self.events[event.id] = event
        return event

    def dispatch(self, events: list[CallbackEvent]) -> list[Delivery]:
        """Events of a simulated action.  Call without holding the sandbox lock."""
        if self.mode == "manual":
            self._pending.extend(e.id for e in events)
            return []
        if self.mode == "async":
            self._enqueue(events)
            return []
        return [d for e in events for d in self.deliver(e)]

    def defer(self, events: list[CallbackEvent]) -> None:
        """Events caused by an API call: sent after the API response, never inside it."""
        if self.mode == "manual":
            self._pending.extend(e.id for e in events)
        elif self.mode == "async":
            self._enqueue(events)
        else:
            self._deferred.extend(e.id for e in events)

    def flush_deferred(self) -> list[Delivery]:
        with self.sandbox.lock:
            ids, self._deferred = self._deferred, []
        return [d for event_id in ids for d in self.deliver(self.events[event_id])]

    def pending(self) -> list[CallbackEvent]:
        return [self.events[i] for i in self._pending]

    def flush(self) -> list[Delivery]:
        """Deliver everything queued (manual mode) or deferred."""
        with self.sandbox.lock:
            ids, self._pending = self._pending, []
        return [d for event_id in ids for d in self.deliver(self.events[event_id])] + \
            self.flush_deferred()

    def take(self) -> list[CallbackEvent]:
        """Pop the pending events (manual mode) without delivering them."""
        with self.sandbox.lock:
            ids, self._pending = self._pending, []
        return [self.events[i] for i in ids]

    # -- building ---------------------------------------------------------------------------

    def target(self, platform: str, target: str, app_name: str | None = None) -> Target:
        return self.sandbox.callback_target(platform, target, app_name)

    def build(self, event: CallbackEvent | str) -> CallbackRequest:
        if isinstance(event, str):
            event = self.events[event]
        with self.sandbox.lock:
            target = self.target(event.platform, event.target, event.app_name)
            rng = self.sandbox.rng_crypto
            timestamp = str(self.sandbox.clock.ts())
            nonce = rng.digits(rng.integer(9, 10))
            inner = event.inner_xml(target.to_user)
            if target.mode == "plain":
                query = {"signature": sha1_signature(target.token, timestamp, nonce),
                         "timestamp": timestamp, "nonce": nonce, "openid": event.from_user}
                body = inner
            else:
                encrypted = target.crypto.encrypt(inner, rng.bytes(16))
                msg_signature = target.crypto.signature(timestamp, nonce, encrypted)
                query, body = self._wrap(target, event, inner, encrypted, timestamp, nonce,
                                         msg_signature)
        url = _with_query(target.url or "", query)
        return CallbackRequest("POST", url, query, dict(HEADERS), body.encode(), event.id)

    @staticmethod
    def _wrap(target: Target, event, inner, encrypted, timestamp, nonce, msg_signature):
        if target.mode == "work":
            query = {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce}
            body = (f"<xml><ToUserName><![CDATA[{target.to_user}]]></ToUserName>"
                    f"<AgentID><![CDATA[{target.agentid}]]></AgentID>"
                    f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
            return query, body
        query = {"signature": sha1_signature(target.token, timestamp, nonce),
                 "timestamp": timestamp, "nonce": nonce, "openid": event.from_user,
                 "encrypt_type": "aes", "msg_signature": msg_signature}
        if target.mode == "compat":
            body = inner[: -len("</xml>")] + f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        else:
            body = (f"<xml><ToUserName><![CDATA[{target.to_user}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        return query, body

    # -- delivering -------------------------------------------------------------------------

    def deliver(self, event: CallbackEvent | str) -> list[Delivery]:
        if isinstance(event, str):
            event = self.events[event]
        with self.sandbox.lock:
            target = self.target(event.platform, event.target, event.app_name)
        results = []
        for attempt in range(1, max(target.attempts, 1) + 1):
            delivery = self._attempt(event, target, attempt)
            results.append(delivery)
            if delivery.outcome in ("ok", "invalid_reply", "no_url"):
                break
            delays = target.retry_delays_s
            if attempt < target.attempts and attempt - 1 < len(delays) and delays[attempt - 1]:
                time.sleep(delays[attempt - 1])
        event.delivered = results[-1].outcome in ("ok", "invalid_reply")
        return results

    def replay(self, delivery_or_event_id: str) -> list[Delivery]:
        event_id = delivery_or_event_id
        for delivery in self.deliveries:
            if delivery.id == delivery_or_event_id:
                event_id = delivery.event_id
        return self.deliver(self.events[event_id])

    def _attempt(self, event: CallbackEvent, target: Target, attempt: int) -> Delivery:
        request = self.build(event)
        with self.sandbox.lock:
            self._delivery_seq += 1
            delivery = Delivery(f"dl{self._delivery_seq}", event.id, event.kind, event.target,
                                attempt, request)
            fault = self.sandbox.faults.callback_outcome(event, attempt)
            self.deliveries.append(delivery)
        if not target.url and self.receiver is None:
            delivery.outcome = "no_url"
            return delivery
        forced = (fault or {}).get("outcome")
        delivery.rule_id = (fault or {}).get("rule_id")
        if forced == "drop":
            delivery.outcome = "connection_error"
            return delivery
        started = time.perf_counter()
        status, body, outcome = self._send(request, target.timeout_s)
        delivery.duration_ms = (time.perf_counter() - started) * 1000
        delivery.status, delivery.response_body = status, body
        if forced == "timeout":
            outcome = "timeout"
        elif forced == "error":
            delivery.status, outcome = int(fault.get("status", 500)), "http_error"
        delivery.outcome = outcome
        if outcome == "ok":
            self._read_reply(delivery, target)
        return delivery

    def _send(self, request: CallbackRequest, timeout_s: float) -> tuple[int | None, bytes, str]:
        if self.receiver is not None:
            status, body = self.receiver(request)
            body = body.encode() if isinstance(body, str) else (body or b"")
            return status, body, "ok" if status == 200 else "http_error"
        try:
            response = self._session.request(request.method, request.url, data=request.body,
                                             headers=request.headers, timeout=timeout_s,
                                             allow_redirects=False)
        except requests.Timeout:
            return None, b"", "timeout"
        except requests.RequestException:
            return None, b"", "connection_error"
        outcome = "ok" if response.status_code == 200 else "http_error"
        return response.status_code, response.content, outcome

    def _read_reply(self, delivery: Delivery, target: Target) -> None:
        text = delivery.response_body.decode(errors="replace").strip()
        if text in ("", "success"):
            return
        try:
            if xml_field(text, "Encrypt") is not None:
                text = target.crypto.decrypt_reply(text)
            if not text.startswith("<xml>"):
                raise CryptoError("reply is not XML")
        except CryptoError as exc:
            delivery.outcome = "invalid_reply"
            delivery.passive_reply = str(exc)
            return
        delivery.passive_reply = text

    # -- URL verification -------------------------------------------------------------------

    def build_verify(self, platform: str, target_id: str,
                     app_name: str | None = None) -> CallbackRequest:
        with self.sandbox.lock:
            target = self.target(platform, target_id, app_name)
            rng = self.sandbox.rng_crypto
            timestamp = str(self.sandbox.clock.ts())
            nonce = rng.digits(rng.integer(9, 10))
            plain = rng.digits(19)
            if platform == "mp":
                query = {"signature": sha1_signature(target.token, timestamp, nonce),
                         "timestamp": timestamp, "nonce": nonce, "echostr": plain}
            else:
                echostr = target.crypto.encrypt(plain, rng.bytes(16))
                query = {"msg_signature": target.crypto.signature(timestamp, nonce, echostr),
                         "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        return CallbackRequest("GET", _with_query(target.url or "", query), query,
                               {"User-Agent": "Mozilla/4.0"}, b"", expected=plain)

    def verify_url(self, platform: str, target_id: str, app_name: str | None = None) -> dict:
        request = self.build_verify(platform, target_id, app_name)
        started = time.perf_counter()
        status, body, outcome = self._send(request, 5.0)
        elapsed = time.perf_counter() - started
        in_time = platform == "mp" or elapsed <= 1.0
        ok = outcome == "ok" and body.decode(errors="replace") == request.expected and in_time
        result = {"ok": ok, "status": status, "body": body.decode(errors="replace")[:200],
                  "expected": request.expected, "url": request.url,
                  "duration_ms": round(elapsed * 1000, 2)}
        self.verifications.append(result)
        return result

    # -- async worker -----------------------------------------------------------------------

    def _enqueue(self, events: list[CallbackEvent]) -> None:
        if self._queue is None:
            self._queue = queue.Queue()
            self._worker = threading.Thread(target=self._run, name="sandbox-callbacks",
                                            daemon=True)
            self._worker.start()
        for event in events:
            self._queue.put(event.id)

    def _run(self) -> None:
        while True:
            event_id = self._queue.get()
            if event_id is None:
                return
            try:
                self.deliver(self.events[event_id])
            except Exception:
                # A failing receiver must not kill the worker; the error is in the log.
                log.exception("callback delivery of %s failed", event_id)
            finally:
                self._queue.task_done()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until the async worker has delivered everything queued."""
        deadline = time.monotonic() + timeout
        while self._queue is not None and self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("callbacks still pending")
            time.sleep(0.01)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._queue = None
        self._session.close()


def _with_query(url: str, query: dict) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode(query)}"
