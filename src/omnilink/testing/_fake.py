"""The base of provider fakes: an ASGI app in-process or on 127.0.0.1, with fault injection."""

from __future__ import annotations

import abc
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from .. import _http
from .._channel import WebhookRequest, WebhookResponse
from .._models import utcnow

if TYPE_CHECKING:
    from .._hub import Hub

WebhookTarget = Callable[[WebhookRequest], Awaitable[WebhookResponse]]
"""Where a fake delivers webhooks: usually ``hub_target(hub, channel)``."""


@dataclass
class Fault:
    """A failure a fake answers with, ``times`` times, for requests to ``endpoint``.

    ``kind`` is ``"http"`` (answer ``status`` with ``body`` and ``headers``),
    ``"timeout_before"`` (the request never reaches the provider) or ``"timeout_after"``
    (the provider processes the request, then the answer is lost).
    """

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    endpoint: str | None = None
    """The fake's name for an endpoint (e.g. ``"messages"``); None matches every endpoint."""
    kind: str = "http"


class _FaultTransport(_http.AsyncTransport):
    """Wraps the in-process transport to simulate timeouts on either side of the provider."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.inner = _http.asgi_transport(fake.app)

    async def handle_async_request(self, request: _http.Request) -> _http.Response:
        fault = self.fake._take_transport_fault("timeout_before")
        if fault is not None:
            raise _http.ConnectTimeout("simulated connect timeout (request not sent)", request=request)
        response = await self.inner.handle_async_request(request)
        fault = self.fake._take_transport_fault("timeout_after")
        if fault is not None:
            await response.aread()
            raise _http.TimeoutException(
                "simulated read timeout (provider processed the request)", request=request
            )
        return response


class FakeProvider(abc.ABC):
    """Base of a provider fake: subclasses implement ``routes()`` with the provider's wire format.

    A fake enforces what the real provider enforces (auth, limits, error bodies), records what
    it accepted, and builds correctly signed webhook requests for the adapter it fakes.
    """

    hosts: tuple[str, ...] = ()
    """Hostnames of the real provider this fake answers for (used by ``routing_transport``)."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.now: Callable[[], datetime] = clock or utcnow
        self.faults: deque[Fault] = deque()
        self.requests: list[tuple[str, str]] = []
        """Every (method, path) the fake received, in order."""
        self._app: Any = None
        self._lock = threading.Lock()
        self.target: WebhookTarget | None = None

    @abc.abstractmethod
    def routes(self) -> Sequence[BaseRoute]:
        """The provider's HTTP API as Starlette routes."""

    @property
    def app(self) -> Any:
        """The fake as an ASGI app (records every request's method and path)."""
        if self._app is None:
            inner = Starlette(routes=list(self.routes()))
            requests = self.requests

            async def app(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    requests.append((scope["method"], scope["path"]))
                await inner(scope, receive, send)

            self._app = app
        return self._app

    def transport(self) -> _http.AsyncTransport:
        """An httpx transport that calls this fake in-process (with simulated timeouts)."""
        return _FaultTransport(self)

    # ---- faults

    def inject(self, fault: Fault) -> None:
        """Queue a failure for the next matching request(s)."""
        with self._lock:
            self.faults.append(fault)

    def take_fault(self, endpoint: str) -> Fault | None:
        """For handlers: the next HTTP fault for ``endpoint``, consumed, or None."""
        return self._take(lambda f: f.kind == "http" and f.endpoint in (None, endpoint))

    def _take_transport_fault(self, kind: str) -> Fault | None:
        return self._take(lambda f: f.kind == kind)

    def _take(self, match: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if match(fault):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ---- webhooks

    async def deliver(self, request: WebhookRequest) -> WebhookResponse:
        """Deliver a webhook request to ``target`` (set it with ``fake.target = hub_target(...)``)."""
        if self.target is None:
            raise RuntimeError(
                "set fake.target (e.g. omnilink.testing.hub_target(hub, 'sms')) before delivering"
            )
        return await self.target(request)

    # ---- serving

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1") -> AsyncIterator[str]:
        """Run the fake as a real HTTP server on ``host`` and a free port; yields its base URL."""
        async with serve_app(self.app, host) as url:
            yield url


@asynccontextmanager
async def serve_app(
    app: Any, host: str = "127.0.0.1", *, ready_timeout: float = 10.0, in_thread: bool | None = None
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on ``host`` and a port the OS picks; yields the base URL.

    On asyncio the server runs in the current event loop, so the app may share state with
    the caller (a Hub, a fake); on other backends (uvicorn needs asyncio) it runs on its own
    thread and loop, which suits apps that share no async state with the caller.
    """
    import sniffio
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    url = f"http://{host}:{port}"
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="auto")
    server = uvicorn.Server(config)
    if in_thread is None:
        in_thread = sniffio.current_async_library() != "asyncio"
    try:
        if not in_thread:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                try:
                    with anyio.fail_after(ready_timeout):
                        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                            await anyio.sleep(0.01)
                    yield url
                finally:
                    server.should_exit = True
            return
        done = threading.Event()

        def run() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                done.set()

        thread = threading.Thread(target=run, name=f"server-{port}", daemon=True)
        thread.start()
        try:
            with anyio.fail_after(ready_timeout):
                while not server.started:
                    if done.is_set():
                        raise RuntimeError("the server stopped before it started")
                    await anyio.sleep(0.01)
            yield url
        finally:
            server.should_exit = True
            await anyio.to_thread.run_sync(lambda: done.wait(ready_timeout))
    finally:
        sock.close()


def routing_transport(*fakes: FakeProvider) -> _http.AsyncTransport:
    """One httpx transport for a Hub that sends each request to the fake serving its host."""
    routes: dict[str, _http.AsyncTransport] = {}
    for fake in fakes:
        transport = fake.transport()
        for host in fake.hosts:
            routes[host] = transport
    return _http.RoutingTransport(routes)


def hub_target(hub: Hub, channel: str) -> WebhookTarget:
    """A webhook target that hands requests to ``hub.handle_webhook(channel, …)``."""

    async def target(request: WebhookRequest) -> WebhookResponse:
        return await hub.handle_webhook(channel, request)

    return target
