"""GroupCommit: concurrent write functions share transactions, each caller gets its own outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from omnilink import MemoryStore, SQLiteStore, Store
from omnilink._group import GroupCommit
from omnilink._store._base import Transaction


class Boom(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "g.sqlite3")
    async with made:
        yield made


def put(key: str, value: str, *, fail: bool = False) -> object:
    def fn(tx: Transaction) -> str:
        tx.set_state(key, value)
        if fail:
            raise Boom(key)
        return f"{key}={value}"

    return fn


async def run_concurrently(group: GroupCommit, fns: list[object]) -> list[object]:
    results: list[object] = [None] * len(fns)

    async def one(i: int) -> None:
        try:
            results[i] = await group.run(fns[i])  # type: ignore[arg-type]
        except Boom as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(len(fns)):
            tg.start_soon(one, i)
    return results


@pytest.mark.anyio
async def test_concurrent_callers_share_transactions_and_get_their_own_results(store: Store) -> None:
    group = GroupCommit(store)
    results = await run_concurrently(group, [put(f"k{i}", str(i)) for i in range(40)])
    assert results == [f"k{i}={i}" for i in range(40)]
    assert group.transactions < 40, "concurrent callers were not grouped"
    for i in range(40):
        assert await store.run(lambda tx, i=i: tx.get_state(f"k{i}")) == str(i)


@pytest.mark.anyio
async def test_one_failure_is_only_its_callers_and_is_rolled_back(store: Store) -> None:
    group = GroupCommit(store)
    fns = [put(f"k{i}", str(i), fail=(i == 3)) for i in range(8)]
    results = await run_concurrently(group, fns)
    assert isinstance(results[3], Boom)
    assert [r for i, r in enumerate(results) if i != 3] == [f"k{i}={i}" for i in range(8) if i != 3]
    assert await store.run(lambda tx: tx.get_state("k3")) is None
    assert await store.run(lambda tx: tx.get_state("k7")) == "7"


@pytest.mark.anyio
async def test_batches_never_exceed_the_limit(store: Store) -> None:
    group = GroupCommit(store, max_batch=4)
    seen: list[int] = []
    original = store.run

    async def counting(fn: object) -> object:
        def wrapped(tx: Transaction) -> object:
            before = len(seen)
            result = fn(tx)  # type: ignore[operator]
            seen.append(len(result) if isinstance(result, list) else 1)
            assert len(seen) == before + 1
            return result

        return await original(wrapped)

    store.run = counting  # type: ignore[method-assign]
    try:
        await run_concurrently(group, [put(f"k{i}", "v") for i in range(17)])
    finally:
        del store.run  # type: ignore[method-assign]
    assert sum(seen) == 17
    assert max(seen) <= 4


@pytest.mark.anyio
async def test_a_cancelled_waiter_is_still_recorded(store: Store) -> None:
    group = GroupCommit(store)
    gate, inside = anyio.Event(), anyio.Event()
    original = store.run

    async def gated(fn: object) -> object:
        inside.set()
        await gate.wait()  # the leader's transaction is "in progress" until the gate opens
        return await original(fn)  # type: ignore[arg-type]

    store.run = gated  # type: ignore[method-assign]
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(group.run, put("lead", "1"))
            with anyio.fail_after(5):
                await inside.wait()
            with anyio.CancelScope() as waiter:
                waiter.cancel()
                await group.run(put("waiter", "2"))  # type: ignore[arg-type]
            assert waiter.cancelled_caught, "the waiter was not cancelled while waiting"
            gate.set()
    finally:
        del store.run  # type: ignore[method-assign]
    assert await store.run(lambda tx: tx.get_state("lead")) == "1"
    assert await store.run(lambda tx: tx.get_state("waiter")) == "2"


@pytest.mark.anyio
async def test_stores_with_concurrent_transactions_are_not_grouped() -> None:
    class Concurrent(MemoryStore):
        single_writer = False

    async with Concurrent() as store:
        group = GroupCommit(store)
        results = await run_concurrently(group, [put(f"k{i}", "v") for i in range(10)])
        assert results == [f"k{i}=v" for i in range(10)]
        assert group.transactions == 10


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(MemoryStore(), max_batch=0)
