"""The PostgreSQL store: many webhook receivers and dispatchers sharing one database.

Transactions run with psycopg 3's synchronous API on a ``psycopg_pool.ConnectionPool``, each
on a worker thread (``anyio.to_thread``), so the store works under asyncio and trio alike.
PostgreSQL is the coordination point: unique keys with ``INSERT ... ON CONFLICT DO NOTHING``
for every dedupe, ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers never take the same
outbox row, and transaction-scoped advisory locks behind ``Transaction.lock_key``.

psycopg is an optional dependency (``pip install "omnilink-core[postgres]"``); it is imported
when a ``PostgresStore`` is created, never when omnilink is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .._errors import ConfigurationError, LifecycleError, StoreError
from ._base import Store, Transaction
from ._feed import PostgresNotifications
from ._migrations import migrate
from ._sql import POSTGRES, Cursor, SQLTransaction

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

T = TypeVar("T")

_MAX_ATTEMPTS = 5
"""How often a transaction runs when PostgreSQL aborts it for a deadlock or serialization failure."""


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            'PostgresStore needs psycopg 3 and psycopg_pool: pip install "omnilink-core[postgres]"'
        ) from exc


def _configure(conn: psycopg.Connection[Any]) -> None:
    from psycopg.types.string import TextLoader

    # Hand JSON columns back as text: models parse them with model_validate_json.
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)


class PostgresStore(Store):
    """A store in a PostgreSQL database (``dsn`` as libpq accepts it: URL or key=value).

    Transactions run at READ COMMITTED, PostgreSQL's default and what ``SKIP LOCKED`` queues and
    ``ON CONFLICT`` dedupe are built for: each ``Transaction`` method is consistent on its own
    (one statement, or rows locked first), and every statement sees what committed before it.
    A read-modify-write across methods (``get_conversation`` then ``save_conversation``) is
    protected by taking ``lock_key`` on the thing first, as the receive pipeline does per contact.

    ``run(fn)`` may call ``fn`` more than once: when PostgreSQL aborts a transaction for a
    deadlock or a serialization failure, it is rolled back and run again (up to 5 times).
    Keep transaction functions free of effects outside the transaction.

    ``check_connections`` (default on) tests each pooled connection before handing it out
    (one empty round trip), so connections the server closed (a restart, a failover) are
    replaced instead of failing the next transaction.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 30.0,
        connect_kwargs: Mapping[str, Any] | None = None,
        check_connections: bool = True,
    ) -> None:
        _require_psycopg()
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.connect_kwargs = dict(connect_kwargs or {})
        self.check_connections = check_connections
        self.schema_version = 0
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        if self._pool is not None:
            raise LifecycleError("PostgresStore is already open")
        self._limiter = anyio.CapacityLimiter(self.max_size)
        self._pool = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)

    def _connect(self) -> ConnectionPool[psycopg.Connection[Any]]:
        from psycopg_pool import ConnectionPool, PoolTimeout

        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            kwargs=self.connect_kwargs,
            configure=_configure,
            # A pooled connection may have died since its last use (a server restart, a
            # failover, an idle timeout): check it on the way out of the pool, so the first
            # webhook after a restart is stored instead of answered 503.
            check=ConnectionPool.check_connection if self.check_connections else None,
            open=False,
            name="omnilink",
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
            self.schema_version = self._transaction(pool, lambda cur: migrate(cur, POSTGRES))
        except PoolTimeout as exc:
            pool.close()
            raise StoreError(f"cannot connect to PostgreSQL within {self.timeout} s: {exc}") from exc
        except BaseException:
            pool.close()
            raise
        return pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pool.close)

    def event_feed(self) -> PostgresNotifications:
        """LISTEN/NOTIFY on one channel per schema (``omnilink._store._feed``)."""
        return PostgresNotifications(self.dsn, self.connect_kwargs)

    async def run(self, fn: Callable[[Transaction], T]) -> T:
        pool = self._pool
        if pool is None:
            raise LifecycleError("PostgresStore is not open: use `async with store:` or `await store.open()`")
        # Not abandoned on cancellation: the transaction finishes (commit or rollback) first.
        return await anyio.to_thread.run_sync(self._run_sync, pool, fn, limiter=self._limiter)

    def _run_sync(self, pool: ConnectionPool[psycopg.Connection[Any]], fn: Callable[[Transaction], T]) -> T:
        def body(cur: Any) -> T:
            tx = SQLTransaction(cur, POSTGRES)
            result = fn(tx)
            tx.finish()
            return result

        return self._transaction(pool, body)

    def _transaction(self, pool: ConnectionPool[psycopg.Connection[Any]], body: Callable[[Cursor], T]) -> T:
        import psycopg
        from psycopg.errors import DeadlockDetected, SerializationFailure
        from psycopg_pool import PoolTimeout

        attempt = 0
        while True:
            try:
                with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    return body(cur)
            except (DeadlockDetected, SerializationFailure) as exc:
                # PostgreSQL aborted the whole transaction (e.g. two webhook batches claiming
                # the same keys in opposite orders): nothing of it was kept, so run it again.
                attempt += 1
                if attempt >= _MAX_ATTEMPTS:
                    raise StoreError(f"PostgreSQL: gave up after {attempt} attempts: {exc}") from exc
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
            except PoolTimeout as exc:
                raise StoreError(f"no PostgreSQL connection free within {self.timeout} s") from exc
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL: {exc}") from exc
