"""Group commit: write functions of concurrent callers run in one store transaction.

On a store that runs one transaction at a time (``Store.single_writer``: SQLite, memory),
every dispatch result recorded in its own transaction pays a durable commit (an fsync with
SQLite's ``synchronous=FULL``) while the other finished sends queue behind it. ``GroupCommit``
lets the first caller lead: it runs its own function and every function queued meanwhile in
one transaction, then repeats while more arrived, and hands each caller its own result. One
commit then covers many sends, and nothing is acknowledged before it is durable.

If the grouped transaction raises, it rolled back as a whole; each function then runs again
in its own transaction, so one caller's failure is never another's. On stores with
concurrent transactions (PostgreSQL) it is a plain ``store.run``: the pool commits in
parallel there, and one transaction holding many callers' locks could deadlock with another
process's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from ._store._base import Store, Transaction

T = TypeVar("T")


class _Job(Generic[T]):
    __slots__ = ("done", "error", "finished", "fn", "result")

    def __init__(self, fn: Callable[[Transaction], T]) -> None:
        self.fn = fn
        self.done = anyio.Event()
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever error is None


class GroupCommit:
    """Runs ``fn(tx)`` for concurrent callers in shared transactions; see the module docs."""

    def __init__(self, store: Store, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._queue: list[_Job[object]] = []
        self._leading = False
        self.transactions = 0
        """Transactions run so far (for tests and benchmarks)."""

    async def run(self, fn: Callable[[Transaction], T]) -> T:
        """``fn``'s result once the transaction it ran in committed (its exception if it raised)."""
        if not self._store.single_writer:
            self.transactions += 1
            return await self._store.run(fn)
        job: _Job[T] = _Job(fn)
        self._queue.append(job)  # type: ignore[arg-type]  # results are handed back untyped
        if self._leading:
            # Cancelled while waiting: the job still runs; only its answer is dropped, as when
            # a store.run is cancelled after its transaction started.
            await job.done.wait()
            return job.outcome()
        self._leading = True
        try:
            # The leader finishes every queued job, its own among them, even when cancelled:
            # the other callers wait for their answers.
            with anyio.CancelScope(shield=True):
                while self._queue:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                    await self._run_batch(batch)
        finally:
            self._leading = False
        return job.outcome()

    async def _run_batch(self, batch: list[_Job[object]]) -> None:
        try:
            if len(batch) > 1:
                try:
                    self.transactions += 1
                    results = await self._store.run(lambda tx: [job.fn(tx) for job in batch])
                except Exception:
                    pass  # rolled back: every job runs again on its own below
                else:
                    for job, result in zip(batch, results, strict=True):
                        job.result, job.finished = result, True
                    return
            for job in batch:
                try:
                    self.transactions += 1
                    job.result = await self._store.run(job.fn)
                except Exception as exc:
                    job.error = exc
                job.finished = True
        except BaseException as exc:
            for job in batch:
                if not job.finished:
                    job.error = exc
            raise
        finally:
            for job in batch:
                job.done.set()
