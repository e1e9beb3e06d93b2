"""HTTP for deliveries: many POSTs at once over kept-alive connections (aiohttp on a uvloop
event loop in a thread of its own), driven from synchronous code one batch at a time."""

import asyncio
import errno
import ipaddress
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import aiohttp
from yarl import URL

try:
    import uvloop
except ImportError:  # not built for every platform; asyncio's own loop is slower
    uvloop = None

EXCERPT_BYTES = 500


@dataclass(frozen=True)
class Request:
    url: str | URL  # a URL parsed once per endpoint saves aiohttp parsing it per POST
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Result:
    status: int | None  # None: no HTTP answer (refused, timed out...)
    excerpt: str
    duration_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def is_private_host(host: str) -> bool:
    """Loopback, private, link-local and other non-public names and addresses."""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


class PublicResolver(aiohttp.ThreadedResolver):
    """Name resolution that keeps only public addresses, at the moment of sending: a name
    checked when the endpoint was saved may resolve to an internal address later (DNS
    rebinding), and a webhook must never become a way into the brand's own network."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET):
        found = [entry for entry in await super().resolve(host, port, family)
                 if not is_private_host(entry["host"])]
        if not found:
            raise OSError(errno.EACCES,
                          f"{host} resolves only to private or loopback addresses")
        return found


class Sender:
    """Use as a context manager; ``submit`` a batch, then ``result()`` its future.
    Unless ``allow_private``, names that resolve to private addresses are not connected to
    (their requests fail as unreachable)."""

    def __init__(self, *, timeout: float, connections_per_host: int,
                 allow_private: bool = False) -> None:
        self.timeout = timeout
        self.connections_per_host = connections_per_host
        self.allow_private = allow_private
        self.loop = uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="webhook-sender",
                                       daemon=True)
        self.session: aiohttp.ClientSession | None = None

    def __enter__(self) -> "Sender":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result()
        return self

    def __exit__(self, *exc_info) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    async def _open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=self.connections_per_host, ttl_dns_cache=60,
            resolver=None if self.allow_private else PublicResolver())
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "scrm-webhooks/1"})

    async def _close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def submit(self, requests: list[Request]) -> Future[list[Result]]:
        return asyncio.run_coroutine_threadsafe(self._send_all(requests), self.loop)

    def send(self, requests: list[Request]) -> list[Result]:
        return self.submit(requests).result()

    async def _send_all(self, requests: list[Request]) -> list[Result]:
        return list(await asyncio.gather(*(self._send(request) for request in requests)))

    async def _send(self, request: Request) -> Result:
        assert self.session is not None
        started = time.perf_counter()
        try:
            async with self.session.post(request.url, data=request.body,
                                         headers=request.headers,
                                         allow_redirects=False) as response:
                excerpt = await response.content.read(EXCERPT_BYTES)
                if not response.content.at_eof():
                    response.close()  # a long answer is not worth reading to keep the line
                return Result(response.status, excerpt.decode(errors="replace"),
                              _ms(started), "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Result(None, "", _ms(started), f"{type(exc).__name__}: {exc}"[:500])


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
