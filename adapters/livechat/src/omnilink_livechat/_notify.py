"""Fan-out across processes: PostgreSQL LISTEN/NOTIFY tells every worker about an agent reply.

A reply may be dispatched by any worker while the visitor's socket is held by another. The
dispatching worker sends ``NOTIFY omnilink_livechat, '<json>'`` naming the message; every
worker listens, and one that holds a socket of that session loads the message from the store
and pushes it. The payload is a reference, never the content (NOTIFY payloads are limited to
8,000 bytes and are visible to every database session).

psycopg's synchronous connections run in worker threads (``anyio.to_thread``), so this works
on asyncio and trio alike.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.abc import TaskStatus

from omnilink import OutboundMessage

if TYPE_CHECKING:
    from ._channel import LivechatChannel

POLL_SECONDS = 0.5
"""How often the listening thread checks whether it should stop."""


class Notifier:
    def __init__(self, channel: LivechatChannel, dsn: str, name: str) -> None:
        self._channel = channel
        self._dsn = dsn
        self._name = name
        self.origin = secrets.token_hex(8)
        """Identifies this process's notifications, which it ignores (it pushed them already)."""
        self._conn: Any = None
        self._lock = anyio.Lock()
        self._announce_send, self._announce_receive = anyio.create_memory_object_stream[dict[str, Any]](256)

    async def _notify(self, payload: dict[str, Any]) -> None:
        import psycopg

        text = json.dumps({"o": self.origin, **payload}, separators=(",", ":"))

        def run() -> None:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True)
            self._conn.execute("SELECT pg_notify(%s, %s)", (self._name, text))

        async with self._lock:
            await anyio.to_thread.run_sync(run)

    async def notify_message(self, outbound: OutboundMessage) -> None:
        await self._notify(
            {"k": "m", "s": outbound.thread_key, "m": outbound.message_id, "p": outbound.part_index}
        )

    def announce(self, payload: dict[str, Any]) -> None:
        """Notify without waiting (from synchronous code); sent by the listening task."""
        try:
            self._announce_send.send_nowait(payload)
        except anyio.WouldBlock:
            self._channel.context.log.warning("livechat announcement dropped: too many queued")

    async def _announcer(self) -> None:
        async for payload in self._announce_receive:
            try:
                await self._notify(payload)
            except Exception:
                self._channel.context.log.exception("livechat announcement failed")

    async def notify_frame(self, session_id: str, frame: dict[str, Any]) -> None:
        await self._notify({"k": "f", "s": session_id, "f": frame})

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await anyio.to_thread.run_sync(conn.close)

    async def listen(self, *, task_status: TaskStatus[None]) -> None:
        """LISTEN in a thread; push what other processes announce. Runs until cancelled."""
        import psycopg

        stop = threading.Event()
        ready = anyio.Event()
        send, receive = anyio.create_memory_object_stream[str](1024)

        def forward(payload: str) -> None:
            try:
                send.send_nowait(payload)
            except anyio.WouldBlock:
                self._channel.context.log.warning("livechat notification dropped: listener behind")

        def worker() -> None:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                conn.execute(f'LISTEN "{self._name}"')
                anyio.from_thread.run_sync(ready.set)
                while not stop.is_set():
                    for note in conn.notifies(timeout=POLL_SECONDS):
                        anyio.from_thread.run_sync(forward, note.payload)
                        if stop.is_set():
                            break

        async def run_worker() -> None:
            try:
                await anyio.to_thread.run_sync(worker)
            finally:
                send.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_worker)
            tg.start_soon(self._announcer)
            try:
                with anyio.fail_after(10):
                    await ready.wait()
                task_status.started()
                async with receive:
                    async for payload in receive:
                        try:
                            await self._deliver(payload)
                        except Exception:
                            self._channel.context.log.exception("livechat notification not delivered")
            finally:
                stop.set()
                with anyio.CancelScope(shield=True):
                    await self.aclose()

    async def _deliver(self, raw: str) -> None:
        payload = json.loads(raw)
        if payload.get("o") == self.origin:
            return
        if payload.get("k") == "a":
            self._channel.apply_agents_available(bool(payload.get("v")))
            return
        session_id = str(payload.get("s", ""))
        if not self._channel.is_online(session_id):
            return
        if payload.get("k") == "f" and isinstance(payload.get("f"), dict):
            self._channel.push_to_session(session_id, payload["f"])
            return
        if payload.get("k") != "m":
            return
        settings = self._channel.settings
        messages = await self._channel.context.thread_messages(
            settings.site_id, session_id, settings.history_limit
        )
        for message in reversed(messages):
            if message.id == payload.get("m"):
                part = payload.get("p")
                self._channel.push_to_session(
                    session_id,
                    self._channel.frame_for_stored(message, part if isinstance(part, int) else None),
                )
                return
