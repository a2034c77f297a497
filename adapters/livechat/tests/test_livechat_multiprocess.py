"""Several processes on one PostgreSQL: a reply dispatched by one worker reaches a visitor whose
socket is held by another, through LISTEN/NOTIFY."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from livechat_support import SITE, livechat_config

from omnilink import DeliveryStatus, Hub, PostgresStore
from omnilink_livechat import LivechatChannel
from omnilink_livechat import _plugin as livechat_plugin
from omnilink_livechat.testing import ScriptedVisitor

HERE = Path(__file__).parent

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def livechat_pg_dsn(omnilink_postgres_dsn: str) -> str:
    """A DSN whose search_path is a fresh schema (the omnilink pytest plugin's fixture)."""
    return omnilink_postgres_dsn


async def _schema_ready(dsn: str) -> None:
    # Open once so migrations run before two processes race to create the schema.
    store = PostgresStore(dsn, max_size=1)
    await store.open()
    await store.aclose()


async def _read_port(process: Process) -> str:
    assert process.stdout is not None
    seen = b""
    while b"\n" not in seen:
        seen += await process.stdout.receive()
    return seen.split(b"\n", 1)[0].decode().strip()


@pytest.fixture
async def workers(livechat_pg_dsn: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Two server processes: one that holds sockets only, one that also dispatches replies."""
    await _schema_ready(livechat_pg_dsn)
    notify_channel = f"livechat_{uuid.uuid4().hex[:12]}"
    processes: list[Process] = []
    urls: list[str] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    script = str(HERE / "livechat_server_process.py")
    try:
        for dispatch in ("0", "1"):
            command = [sys.executable, script, livechat_pg_dsn, notify_channel, dispatch]
            processes.append(await anyio.open_process(command, stdout=subprocess.PIPE, env=env))
        for process in processes:
            with anyio.fail_after(30):
                port = await _read_port(process)
            assert port.isdigit(), f"worker did not start (exit code {process.returncode})"
            urls.append(f"ws://127.0.0.1:{port}/channels/livechat/ws")
        yield notify_channel, urls
    finally:
        with anyio.CancelScope(shield=True):
            for process in processes:
                process.terminate()
            for process in processes:
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the real-server visitor uses websockets
async def test_reply_dispatched_by_one_worker_reaches_a_visitor_on_another(
    livechat_pg_dsn: str, workers: tuple[str, list[str]]
) -> None:
    notify_channel, (socket_worker, _dispatch_worker) = workers
    # The helpdesk's own process: it enqueues the reply; a worker dispatches it.
    helpdesk = Hub(
        store=PostgresStore(livechat_pg_dsn, max_size=2),
        channels={"livechat": livechat_config(notify_dsn=livechat_pg_dsn, notify_channel=notify_channel)},
        plugins=[livechat_plugin],
        load_entry_points=False,
        dispatch=False,
    )
    async with helpdesk, ScriptedVisitor.connect(socket_worker, SITE) as visitor:
        server_id = await visitor.say("hello from process one", timeout=20)
        message = await helpdesk.message(server_id)
        reply = await helpdesk.reply(message.conversation_id, "answered from another process")
        pushed = await visitor.agent_message(timeout=20)
        assert pushed["text"] == "answered from another process"
        assert pushed["id"] == reply.id
        with anyio.fail_after(20):
            while (await helpdesk.message(reply.id)).status is not DeliveryStatus.DELIVERED:  # noqa: ASYNC110
                await anyio.sleep(0.05)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_two_hubs_on_one_database_fan_out_replies_and_availability(livechat_pg_dsn: str) -> None:
    await _schema_ready(livechat_pg_dsn)
    config = livechat_config(notify_dsn=livechat_pg_dsn, notify_channel=f"livechat_{uuid.uuid4().hex[:12]}")

    def worker(dispatch: bool) -> Hub:
        return Hub(
            store=PostgresStore(livechat_pg_dsn, max_size=2),
            channels={"livechat": config},
            plugins=[livechat_plugin],
            load_entry_points=False,
            dispatch=dispatch,
        )

    sockets, dispatcher = worker(False), worker(True)
    async with sockets, dispatcher, ScriptedVisitor.in_process(sockets.asgi_app(), SITE) as visitor:
        server_id = await visitor.say("hello")
        conversation_id = (await dispatcher.message(server_id)).conversation_id
        reply = await dispatcher.reply(conversation_id, "from the other worker")
        pushed = await visitor.agent_message(timeout=10)
        assert pushed["id"] == reply.id
        assert pushed["text"] == "from the other worker"
        chat = dispatcher.channel("livechat")
        assert isinstance(chat, LivechatChannel)
        chat.set_agents_available(False)
        assert await visitor.next_frame("agents", timeout=10) == {"type": "agents", "available": False}
