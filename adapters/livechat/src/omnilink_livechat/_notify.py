"""Fan-out across processes: PostgreSQL LISTEN/NOTIFY tells every worker about an agent reply.

A reply may be dispatched by any worker while the visitor's socket is held by another. The
dispatching worker sends ``NOTIFY omnilink_livechat, '<json>'`` naming the message; every
worker listens, and one that holds a socket of that session loads the message from the store
and pushes it. The payload is a reference, never the content (NOTIFY payloads are limited to
8,000 bytes and are visible to every database session).

The channel is the core's ``omnilink.PostgresNotifications`` (psycopg's synchronous
connections in worker threads), so this works on asyncio and trio alike.
"""

from __future__ import annotations

import functools
import json
import secrets
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from omnilink import OutboundMessage, PostgresNotifications

if TYPE_CHECKING:
    from ._channel import LivechatChannel


class Notifier:
    def __init__(self, channel: LivechatChannel, dsn: str, name: str) -> None:
        self._channel = channel
        self._notifications = PostgresNotifications(dsn, channel=name)
        self.origin = secrets.token_hex(8)
        """Identifies this process's notifications, which it ignores (it pushed them already)."""
        self._announce_send, self._announce_receive = anyio.create_memory_object_stream[dict[str, Any]](256)

    async def _notify(self, payload: dict[str, Any]) -> None:
        text = json.dumps({"o": self.origin, **payload}, separators=(",", ":"))
        await self._notifications.send([text])

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
        await self._notifications.aclose()

    async def listen(self, *, task_status: TaskStatus[None]) -> None:
        """LISTEN (in a thread); push what other processes announce. Runs until cancelled."""
        send, receive = anyio.create_memory_object_stream[str](1024)

        def forward(payload: str) -> None:
            try:
                send.send_nowait(payload)
            except anyio.WouldBlock:
                self._channel.context.log.warning("livechat notification dropped: listener behind")

        async with anyio.create_task_group() as tg:
            try:
                await tg.start(functools.partial(self._notifications.listen, forward))
                tg.start_soon(self._announcer)
                task_status.started()
                async with receive:
                    async for payload in receive:
                        try:
                            await self._deliver(payload)
                        except Exception:
                            self._channel.context.log.exception("livechat notification not delivered")
            finally:
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
