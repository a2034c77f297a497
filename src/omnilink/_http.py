"""The one core module that imports httpx: the Hub's client and in-process transports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

AsyncTransport = httpx.AsyncBaseTransport
AsyncClient = httpx.AsyncClient
Request = httpx.Request
Response = httpx.Response
TimeoutException = httpx.TimeoutException
ConnectTimeout = httpx.ConnectTimeout
ConnectError = httpx.ConnectError
TransportError = httpx.TransportError


def create_client(
    transport: httpx.AsyncBaseTransport | None, timeout: float | None = None
) -> httpx.AsyncClient:
    """The Hub's HTTP client; ``transport`` plugs a fake provider in without monkeypatching."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)) if timeout else DEFAULT_TIMEOUT,
        follow_redirects=False,
        headers={"user-agent": "omnilink"},
    )


def asgi_transport(app: Any) -> httpx.AsyncBaseTransport:
    """An httpx transport that calls an ASGI app in-process."""
    return httpx.ASGITransport(app=app)


class RoutingTransport(httpx.AsyncBaseTransport):
    """Sends each request to the transport registered for its host; unknown hosts fail loudly.

    A test that forgets to fake a provider gets an error instead of a real network call.
    """

    def __init__(self, routes: Mapping[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = dict(routes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(
                f"no fake provider serves {request.url.host!r} (known: {sorted(self.routes)})",
                request=request,
            )
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in {id(t): t for t in self.routes.values()}.values():
            await transport.aclose()


class RedirectTransport(httpx.AsyncBaseTransport):
    """Sends requests for the given hosts to other base URLs over real HTTP (fakes on 127.0.0.1).

    Used by the demo and end-to-end tests: the adapter keeps its real provider URL in its
    config, and the request travels over a real socket to the fake serving that host.
    """

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets = {host: httpx.URL(url) for host, url in targets.items()}
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.targets.get(request.url.host)
        if target is None:
            raise httpx.ConnectError(f"no local server for {request.url.host!r}", request=request)
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        request.headers["host"] = f"{target.host}:{target.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` (a webhook to a served Hub); returns (status, body)."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(url, content=body, headers=dict(headers))
        return response.status_code, response.content
