"""Webhook tests talk real HTTP to a receiver on 127.0.0.1 (a thread with http.server)."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.webhooks.services.delivery import deliveries_send_due
from integrations.webhooks.services.endpoints import endpoint_create
from integrations.webhooks.services.relay import relay_pending
from scrm.access import ALL_SCOPES, Actor
from scrm.events import EVENT_TYPES
from scrm.tenancy import tenant_scope


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str = ""

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers with ``status`` (200 unless a test changes it) and keeps what it got."""

    url: str = ""
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict]:
        with self.lock:
            return [r.json for r in self.received]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.status
            if 200 <= status < 300:
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers.items()), body,
                                                      self.path))
            answer = b'{"ok": true}' if status < 300 else b"upstream is down"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    target = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target))
    server.daemon_threads = True
    target.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield target
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


@pytest.fixture
def endpoint_with_secret(actor, receiver):
    with tenant_scope(actor.tenant):
        return endpoint_create(actor=actor, name="ERP", url=receiver.url,
                               event_types=list(EVENT_TYPES))


@pytest.fixture
def endpoint(endpoint_with_secret):
    return endpoint_with_secret[0]


def pump() -> int:
    """What the relay and the sender tasks do, now: returns the POSTs attempted."""
    relay_pending()
    return deliveries_send_due(seconds=30)
