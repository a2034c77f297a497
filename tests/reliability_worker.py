"""A Hub in its own OS process, for the reliability tests (they spawn it and may SIGKILL it).

Not a test module: ``python tests/reliability_worker.py <command> ...``. Every command prints
one JSON object per line on stdout (``{"event": ...}``), flushed at once, so the parent test
can follow it with a timeout.

Commands:

``ingest [--backend asyncio|trio]``
    Print ``started``, then run rounds until an empty line: each round is one stdin line
    ``{"store": URL, "payloads": FILE}``. Open a Hub on the store, print ``ready``, wait for
    one line on stdin (the parent's "go", so two workers start together), then hand every
    payload of FILE (a JSON list of webhook bodies, each signed here) to
    ``hub.handle_webhook`` concurrently. A delivery answered with a non-2xx is retried, as a
    provider would. Print ``done`` with every final status, close the Hub.

``serve --store URL``
    Serve the Hub's ASGI app with uvicorn (asyncio) on 127.0.0.1, port 0; print ``listening``
    with the URL, then serve until killed.

``dispatch --store URL --fake BASE_URL [--no-reconcile] [--backend ...]``
    Open a Hub whose loopback channel talks to the fake at BASE_URL over real HTTP
    (``RedirectTransport``), with a 1 s lease and 2 concurrent sends (``--lease``,
    ``--concurrency``); print ``running``, wait
    until nothing is left to dispatch, print ``drained`` and exit. With ``--no-reconcile`` the
    channel cannot look sends up (``reconcile`` raises ``OutcomeUnknownError``).

A store URL is ``sqlite:<path>`` or a PostgreSQL DSN (``postgresql://...``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

from omnilink import (
    ChannelContext,
    ChannelSpec,
    Hub,
    HubSettings,
    OutboundMessage,
    OutcomeUnknownError,
    PostgresStore,
    SendResult,
    SQLiteStore,
    Store,
    WebhookRequest,
)
from omnilink._http import RedirectTransport
from omnilink.hookspecs import hookimpl
from omnilink.testing import LOOPBACK_CAPABILITIES, LoopbackChannel, LoopbackConfig, LoopbackPlugin, sign
from omnilink.testing._loopback import LOOPBACK_HOST, SIGNATURE_HEADER

TOKEN = "tok"
SECRET = "whsec"
CHANNELS = {"loopback": {"token": TOKEN, "webhook_secret": SECRET}}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def make_store(url: str) -> Store:
    if url.startswith("sqlite:"):
        return SQLiteStore(url.removeprefix("sqlite:"))
    return PostgresStore(url, max_size=8)


def signed(body: bytes) -> WebhookRequest:
    return WebhookRequest.build(
        "POST",
        "https://helpdesk.example/webhooks/loopback",
        {SIGNATURE_HEADER: sign(SECRET, body), "content-type": "application/json"},
        body,
    )


# --------------------------------------------------------------------------- a channel without lookups


class NoLookupChannel(LoopbackChannel):
    """The loopback channel of a provider that offers no way to look a send up."""

    async def reconcile(self, outbound: OutboundMessage) -> SendResult | None:
        raise OutcomeUnknownError("this provider cannot look sends up", channel=self.name)


class NoLookupPlugin:
    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        def factory(config: LoopbackConfig, context: ChannelContext) -> NoLookupChannel:
            return NoLookupChannel(config, context)

        return [
            ChannelSpec(
                name="loopback",
                config_model=LoopbackConfig,
                factory=factory,
                capabilities=LOOPBACK_CAPABILITIES,
                summary="loopback without send lookups",
            )
        ]


# --------------------------------------------------------------------------- commands


async def ingest(args: argparse.Namespace) -> None:
    emit("started")
    while True:
        line = await read_line()
        if not line.strip():
            return
        task = json.loads(line)
        await ingest_round(task["store"], task["payloads"])


async def read_line() -> str:
    return await anyio.to_thread.run_sync(sys.stdin.readline)


async def ingest_round(store: str, payloads: str) -> None:
    with open(payloads, encoding="utf-8") as fh:  # noqa: ASYNC230 - a small local file
        bodies = [str(b).encode() for b in json.load(fh)]
    hub = Hub(
        store=make_store(store),
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        dispatch=False,
    )
    async with hub:
        emit("ready")
        with anyio.fail_after(30):
            await read_line()
        statuses: list[int] = [0] * len(bodies)
        retries = 0

        async def deliver(index: int) -> None:
            nonlocal retries
            for attempt in range(50):
                response = await hub.handle_webhook("loopback", signed(bodies[index]))
                statuses[index] = response.status
                if 200 <= response.status < 300:
                    return
                retries += 1
                await anyio.sleep(0.01 * (attempt + 1))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(len(bodies)):
                    tg.start_soon(deliver, index)
        emit("done", statuses=statuses, retries=retries)


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    hub = Hub(
        store=make_store(args.store),
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        dispatch=False,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with hub:
        config = uvicorn.Config(hub.asgi_app(), log_level="warning", lifespan="off", backlog=256)
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110 - uvicorn only offers a flag
                await anyio.sleep(0.01)
            emit("listening", url=f"http://127.0.0.1:{port}")


async def dispatch(args: argparse.Namespace) -> None:
    plugin: object = NoLookupPlugin() if args.no_reconcile else LoopbackPlugin()
    hub = Hub(
        store=make_store(args.store),
        channels=CHANNELS,
        plugins=[plugin],
        load_entry_points=False,
        transport=RedirectTransport({LOOPBACK_HOST: args.fake}),
        settings=HubSettings(
            lease=timedelta(seconds=args.lease),
            dispatch_concurrency=args.concurrency,
            poll_interval=0.1,
            backoff_base=0.05,
            http_timeout=20.0,
        ),
    )
    async with hub:
        emit("running")
        await hub.drain(timeout=60)
        emit("drained")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--backend", default="asyncio")
    p = sub.add_parser("serve")
    p.add_argument("--store", required=True)
    p = sub.add_parser("dispatch")
    p.add_argument("--store", required=True)
    p.add_argument("--fake", required=True)
    p.add_argument("--no-reconcile", action="store_true")
    p.add_argument("--lease", type=float, default=1.0, help="seconds a claimed send is owned")
    p.add_argument("--concurrency", type=int, default=2, help="sends in flight at once")
    p.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    if args.command == "ingest":
        anyio.run(ingest, args, backend=args.backend)
    elif args.command == "serve":
        anyio.run(serve, args, backend="asyncio")  # uvicorn runs on asyncio only
    else:
        anyio.run(dispatch, args, backend=args.backend)


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------- the parent's side

WORKER = __file__


class Worker:
    """A running worker process, followed line by line; always killed on exit."""

    def __init__(self, process: anyio.abc.Process, log_path: str) -> None:
        self.process = process
        self.log_path = log_path
        assert process.stdout is not None
        self._out = BufferedByteReceiveStream(process.stdout)

    @classmethod
    @asynccontextmanager
    async def start(cls, *args: str, log_path: str) -> AsyncIterator[Worker]:
        with open(log_path, "ab") as log:  # noqa: ASYNC230 - a local log file, opened at once
            process = await anyio.open_process(
                [sys.executable, WORKER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        worker = cls(process, log_path)
        try:
            yield worker
        finally:
            await worker.kill()

    async def expect(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next line the worker prints, which must be ``event``."""
        try:
            with anyio.fail_after(timeout):
                line = await self._out.receive_until(b"\n", 10_000_000)
        except (TimeoutError, anyio.EndOfStream, anyio.IncompleteRead) as exc:
            raise AssertionError(f"worker did not print {event!r}; its log:\n{self.log()}") from exc
        message: dict[str, Any] = json.loads(line)
        assert message["event"] == event, (message, self.log())
        return message

    async def send_line(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(text.encode() + b"\n")

    async def wait(self, timeout: float = 30.0) -> int:
        with anyio.fail_after(timeout):
            return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL (no cleanup runs in the worker), then reap it."""
        if self.process.returncode is None:
            self.process.kill()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await self.process.wait()
        with anyio.CancelScope(shield=True):
            await self.process.aclose()

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-5000:]


def pg_admin_dsn() -> str:
    """The PostgreSQL server of the tests (``OMNILINK_TEST_POSTGRES_DSN`` overrides)."""
    return os.environ.get("OMNILINK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def pg_schemas() -> Iterator[Callable[[], str]]:
    """A factory of DSNs, each with a fresh schema as search_path; every schema dropped after.

    Without a reachable server the calling test is skipped, unless ``CI`` is set: then it fails.
    """
    import psycopg
    import pytest
    from psycopg.conninfo import make_conninfo

    admin = pg_admin_dsn()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {admin} (CI is set, so this fails): {exc}")
        pytest.skip(reason=f"PostgreSQL not reachable at {admin}: {exc}")
    created: list[str] = []

    def fresh() -> str:
        schema = f"omnilink_rel_{uuid.uuid4().hex[:12]}"
        conn.execute(f"CREATE SCHEMA {schema}")
        created.append(schema)
        return make_conninfo(admin, options=f"-c search_path={schema}")

    with conn:
        try:
            yield fresh
        finally:
            for schema in created:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
