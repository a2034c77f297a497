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

Checkpoints: committed pages go to the WAL first and are copied into the database file by a
checkpoint. SQLite's default runs one inside the commit that crosses 1,000 WAL pages, so
every few webhooks one of them also pays for writing back (and fsyncing) the pages of the
last several. By default (``background_checkpoint=True``) the store runs passive checkpoints
on a thread of its own with a second connection instead, nudged every
``CHECKPOINT_EVERY_COMMITS`` commits and at least once a second while the store is open;
commits only append to the WAL. Passive checkpoints never block the writer. A commit still
checkpoints by itself if the WAL reaches ``INLINE_CHECKPOINT_PAGES`` pages (the thread fell
behind), which bounds the WAL file.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger("omnilink.store")

CHECKPOINT_EVERY_COMMITS = 4
"""Commits between nudges of the background checkpointer (1 to 16 measured alike; see
benchmarks/README.md)."""
CHECKPOINT_INTERVAL = 1.0
"""Seconds the background checkpointer waits for a nudge before checkpointing anyway."""
INLINE_CHECKPOINT_PAGES = 8000
"""WAL pages at which a commit checkpoints by itself although the background thread runs."""


class _Checkpointer:
    """Passive WAL checkpoints on a thread and connection of their own.

    The thread sleeps until ``nudge()`` or ``CHECKPOINT_INTERVAL`` seconds, then copies the
    committed WAL frames into the database (``PRAGMA wal_checkpoint(PASSIVE)``: it takes no
    lock a writer waits for, and skips frames a reader still needs). Its connection uses the
    store's ``synchronous``, so the database file is fsynced after each checkpoint as the
    writer's own checkpoints would be. A failed checkpoint is logged and retried at the next
    wake-up: the WAL still holds every committed page meanwhile.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.checkpoints = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="omnilink-sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("SQLite checkpoint thread for %s did not stop within %s s", self._path, timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning(
                "SQLite checkpoint thread cannot open %s (commits checkpoint instead): %s", self._path, exc
            )
            return
        configured = False
        try:
            while not self._stop.is_set():
                self._wake.wait(CHECKPOINT_INTERVAL)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    if not configured:
                        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                        # This connection writes no rows; closing it must not checkpoint either.
                        conn.execute("PRAGMA wal_autocheckpoint = 0")
                        configured = True
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    self.failures += 1
                    log.warning("SQLite checkpoint of %s failed (retried): %s", self._path, exc)
        finally:
            conn.close()


class SQLiteStore(Store):
    """A store in one SQLite file.

    ``path`` may be ``":memory:"`` for a private in-memory database (no WAL then).
    ``synchronous``: ``"FULL"`` (default) fsyncs every commit, so an acknowledged webhook
    survives a power cut; ``"NORMAL"`` survives a process kill only, with cheaper commits.
    ``busy_timeout``: seconds to wait for another process's write lock.
    ``cache_mb``: SQLite's page cache for the store's connection (64 MB; SQLite's own default
    is 2 MB), filled as pages are read.
    ``background_checkpoint``: fold the WAL into the database on a thread of the store's own
    (the default) rather than inside every thousand-page commit (see the module notes).
    """

    single_writer = True

    def __init__(
        self,
        path: str | Path = "omnilink.sqlite3",
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 10.0,
        cache_mb: int = 64,
        background_checkpoint: bool = True,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be 'FULL' or 'NORMAL'")
        if not isinstance(cache_mb, int) or cache_mb < 1:
            raise ValueError("cache_mb must be a positive whole number of megabytes")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.cache_mb = cache_mb
        self.background_checkpoint = background_checkpoint
        self.schema_version = 0
        self._checkpointer: _Checkpointer | None = None
        self._commits = 0
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
        if self.background_checkpoint and self.path != ":memory:":
            self._checkpointer = _Checkpointer(self.path, self.synchronous)
            self._checkpointer.start()

    @property
    def checkpoints(self) -> int:
        """Checkpoints the background thread has run since the store opened (0 without it)."""
        return self._checkpointer.checkpoints if self._checkpointer is not None else 0

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
            if self.background_checkpoint:
                conn.execute(f"PRAGMA wal_autocheckpoint = {INLINE_CHECKPOINT_PAGES}")
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
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(checkpointer.stop)
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

    def _committed(self) -> None:
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY_COMMITS and self._checkpointer is not None:
            self._commits = 0
            self._checkpointer.nudge()

    def _transaction(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Cursor], T]) -> T:
        with self._lock:
            cur = conn.cursor()
            try:
                try:
                    cur.execute("BEGIN IMMEDIATE")
                    result = body(cur)
                    cur.execute("COMMIT")
                    self._committed()
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite ({self.path}): {exc}") from exc
            finally:
                cur.close()
