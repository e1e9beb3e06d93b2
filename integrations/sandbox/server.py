"""A small threaded HTTP/1.1 server (keep-alive) in front of ``FakeWeChat.handle_request``.

Written on ``socketserver`` rather than ``http.server`` because header parsing through the
email package costs more than the sandbox's own work on a batchget call.  Usable from tests
on ``127.0.0.1:0`` with a clean ``stop()``.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

MAX_LINE = 65_536


class _Handler(socketserver.StreamRequestHandler):
    rbufsize = 65_536
    wbufsize = 0

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except (ConnectionError, TimeoutError, OSError):
            return

    def _one_request(self) -> bool:
        line = self.rfile.readline(MAX_LINE)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(MAX_LINE)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            self._send_simple(400, keep_alive=False)
            return False
        headers = self._headers()
        if headers.get("expect", "").lower() == "100-continue":
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._body(headers)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            headers.setdefault("x-original-host", parts.netloc)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        path, _, query = target.partition("?")
        reply = self.server.core.handle_request(method, None, unquote(path), query, headers, body,
                                                self.client_address[0])
        try:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.reset:
                self._reset()
                return False
            self._send(reply, keep_alive and not reply.early_close, method == "HEAD")
        finally:
            reply.run_after()
        return keep_alive and not reply.early_close

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        while True:
            line = self.rfile.readline(MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()

    def _body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return self.rfile.read(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() != "chunked":
            return b""
        chunks = []
        while True:
            size = int(self.rfile.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(MAX_LINE)

    def _send(self, reply, keep_alive: bool, head_only: bool) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = "Unknown"
        length = reply.content_length if reply.content_length is not None else len(reply.body)
        lines = [f"HTTP/1.1 {reply.status} {reason}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        lines += [f"Content-Length: {length}",
                  f"Connection: {'keep-alive' if keep_alive else 'close'}", "", ""]
        head = "\r\n".join(lines).encode("latin-1", "replace")
        self.connection.sendall(head if head_only else head + reply.body)

    def _send_simple(self, status: int, keep_alive: bool) -> None:
        from .wire import Reply

        self._send(Reply(status, [("Content-Type", "text/plain")], b""), keep_alive, False)

    def _reset(self) -> None:
        """Close with RST, so the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, core):
        self.core = core
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._connections_lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """``SandboxServer(core).start()`` serves on a free loopback port; ``.url``; ``.stop()``."""

    def __init__(self, core, host: str = "127.0.0.1", port: int = 0):
        self.core = core
        self._server = _Server((host, port), core)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02},
                                        name="wechat-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
