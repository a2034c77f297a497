"""The SQLite store: one file, WAL, durable commits; the embedded default.

One connection serves every transaction, on a worker thread (``anyio.to_thread``) behind a
``CapacityLimiter(1)``, so it works the same under asyncio and trio and never blocks the
event loop. Each transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up
front, so two processes sharing the file serialise instead of failing mid-transaction on a
lock upgrade, and waits up to ``busy_timeout`` for it.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` by default, which fsyncs the WAL
at every commit. A webhook is acknowledged only after its transaction commits, so a
committed message must survive a process kill *and* a power cut; ``synchronous=NORMAL``
(pass it explicitly) survives a process kill but may lose the last commits on power loss,
in exchange for faster commits.

Page cache: ``cache_mb`` (64 MB by default, against SQLite's 2 MB) keeps the upper levels of
every index and the hot conversations in memory as the store grows; it is allocated as pages
are read, up to the limit, for the one connection.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from .._errors import LifecycleError, StoreError
from ._base import Store, Transaction
from ._migrations import migrate
from ._sql import SQLITE, SQLTransaction

T = TypeVar("T")


class SQLiteStore(Store):
    """A store in one SQLite file.

    ``path`` may be ``":memory:"`` for a private in-memory database (no WAL then).
    ``synchronous``: ``"FULL"`` (default) fsyncs every commit, so an acknowledged webhook
    survives a power cut; ``"NORMAL"`` survives a process kill only, with cheaper commits.
    ``busy_timeout``: seconds to wait for another process's write lock.
    ``cache_mb``: SQLite's page cache for the store's connection (64 MB; SQLite's own default
    is 2 MB), filled as pages are read.
    """

    single_writer = True

    def __init__(
        self,
        path: str | Path = "omnilink.sqlite3",
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 10.0,
        cache_mb: int = 64,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be 'FULL' or 'NORMAL'")
        if not isinstance(cache_mb, int) or cache_mb < 1:
            raise ValueError("cache_mb must be a positive whole number of megabytes")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.cache_mb = cache_mb
        self.schema_version = 0
        self._conn: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        # Guards the one connection if two event loops (threads) share this store.
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        if self._conn is not None:
            raise LifecycleError("SQLiteStore is already open")
        self._limiter = anyio.CapacityLimiter(1)
        self._conn = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        # Switching a new file to WAL ignores busy_timeout: several processes opening the same
        # new file at once get "database is locked". Retry until the busy timeout.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.path != ":memory:":
                mode = self._enable_wal(conn)
                if str(mode).lower() != "wal":
                    raise StoreError(f"SQLite database {self.path!r} refused WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Negative: KiB. SQLite's own default is 2 MB, which a store of a million messages
            # outgrows at once; every index page that misses it is a read from the OS.
            conn.execute(f"PRAGMA cache_size = {-self.cache_mb * 1024}")
            self.schema_version = self._transaction(conn, lambda cur: migrate(cur, SQLITE))
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._close, conn, limiter=self._limiter)

    def _close(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            conn.close()

    async def run(self, fn: Callable[[Transaction], T]) -> T:
        conn = self._conn
        if conn is None:
            raise LifecycleError("SQLiteStore is not open: use `async with store:` or `await store.open()`")
        # Not abandoned on cancellation: the transaction finishes (commit or rollback) first.
        return await anyio.to_thread.run_sync(self._run_sync, conn, fn, limiter=self._limiter)

    def _run_sync(self, conn: sqlite3.Connection, fn: Callable[[Transaction], T]) -> T:
        def body(cur: sqlite3.Cursor) -> T:
            tx = SQLTransaction(cur, SQLITE)
            result = fn(tx)
            tx.finish()
            return result

        return self._transaction(conn, body)

    def _transaction(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Cursor], T]) -> T:
        with self._lock:
            cur = conn.cursor()
            try:
                try:
                    cur.execute("BEGIN IMMEDIATE")
                    result = body(cur)
                    cur.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite ({self.path}): {exc}") from exc
            finally:
                cur.close()
