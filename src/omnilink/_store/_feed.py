"""Events shared between the processes of one store: PostgreSQL LISTEN/NOTIFY.

Every Hub on a ``PostgresStore`` with ``HubSettings(share_events=True)`` sends each event it
publishes as a notification on one channel per database schema, and listens on it: a
helpdesk's web process subscribed to ``hub.subscribe()`` sees the messages that its webhook
workers stored, the deliveries its dispatchers recorded, typing from any process.

A notification carries the event's JSON when it fits (PostgreSQL limits payloads to 8,000
bytes); a ``MessageReceived`` or ``MessageQueued`` too large for that carries the ids only,
and each listening process loads the message (and conversation) from the store. Every
payload names its sending Hub, which ignores its own. Delivery is live, not durable: a
process that was not listening when an event happened does not get it later (what happened
is in the store). psycopg's synchronous connections run in worker threads, so this works on
asyncio and trio alike.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.abc import TaskStatus

from .._errors import StoreError

if TYPE_CHECKING:
    import psycopg

POLL_SECONDS = 0.5
"""How often the listening thread checks whether it should stop."""
MAX_PAYLOAD = 7_900
"""Bytes of a notification payload (PostgreSQL refuses 8,000 and more)."""


def channel_name(schema: str) -> str:
    """The notification channel of one schema (channels are per database, schemas share them)."""
    return "omnilink_events_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


class PostgresNotifications:
    """One PostgreSQL notification channel: send payloads to it, listen to it.

    What ``PostgresStore.event_feed`` returns (``channel`` None: the store's events channel
    of the connection's schema), and what an adapter uses for its own fan-out between
    processes with a ``channel`` of its own. Sending uses one connection, reconnecting once
    when it died; listening uses another, in a worker thread (asyncio and trio alike).
    psycopg is imported when a connection is made, never before.
    """

    def __init__(
        self, dsn: str, connect_kwargs: dict[str, Any] | None = None, *, channel: str | None = None
    ) -> None:
        self._dsn = dsn
        self._kwargs = dict(connect_kwargs or {})
        self.channel = channel
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        conn = psycopg.connect(self._dsn, autocommit=True, **self._kwargs)
        if self.channel is None:
            row = conn.execute("SELECT current_schema()").fetchone()
            self.channel = channel_name(str(row[0]) if row else "public")
        return conn

    def _send_sync(self, payloads: Sequence[str]) -> None:
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect()
                    # One round trip (psycopg pipelines executemany), sent in order.
                    with self._conn.cursor() as cur:
                        cur.executemany("SELECT pg_notify(%s, %s)", [(self.channel, p) for p in payloads])
                    return
                except psycopg.OperationalError as exc:
                    # The connection died (a server restart): reconnect once, then give up.
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise StoreError(f"PostgreSQL: cannot send events: {exc}") from exc
                except psycopg.Error as exc:
                    raise StoreError(f"PostgreSQL: cannot send events: {exc}") from exc

    async def send(self, payloads: Sequence[str]) -> None:
        """Notify every listening process of ``payloads``, in order."""
        if payloads:
            await anyio.to_thread.run_sync(self._send_sync, payloads)

    async def listen(self, deliver: Callable[[str], None], *, task_status: TaskStatus[None]) -> None:
        """LISTEN on a connection of its own, in a thread; hand each payload to ``deliver`` (on
        the event loop). Reports started once listening; runs until cancelled."""
        stop = threading.Event()
        ready = anyio.Event()

        def worker() -> None:
            conn = self._connect()
            try:
                conn.execute(f'LISTEN "{self.channel}"')
                anyio.from_thread.run_sync(ready.set)
                while not stop.is_set():
                    for note in conn.notifies(timeout=POLL_SECONDS):
                        anyio.from_thread.run_sync(deliver, note.payload)
                        if stop.is_set():
                            break
            finally:
                conn.close()

        async with anyio.create_task_group() as tg:
            # A worker that fails (cannot connect, connection lost) raises here: before
            # ``started``, to the Hub that is opening; after it, to the Hub's retry loop.
            tg.start_soon(anyio.to_thread.run_sync, worker)
            try:
                with anyio.fail_after(30):
                    await ready.wait()
                task_status.started()
                await anyio.sleep_forever()
            finally:
                stop.set()  # the thread notices within POLL_SECONDS; the task group waits for it

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close)
