"""Inbound write throughput of SQLiteStore, against bare sqlite3 doing the same SQL.

Each event is what the receive pipeline writes for one inbound message: ``claim_inbound``
(the dedupe key) plus ``insert_message`` (the row and its provider id), 100 events per
transaction. We measure a window of events once the database holds 10k messages and again
at 100k: the cost per event must stay flat as the store grows.

The baseline runs the very same statements on a bare ``sqlite3`` connection, same schema,
same pragmas, same ``BEGIN IMMEDIATE`` batches, and also serialises each message with
``model_dump_json`` - so the ratio is the cost of the store layer itself (worker thread hop,
transaction object, timestamp formatting), not of pydantic or SQLite.

Run: ``python benchmarks/bench_store.py [--sizes 10000,100000] [--synchronous FULL|NORMAL] [--dir /dev/shm]``
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from omnilink._models import Author, AuthorKind, DeliveryStatus, Direction, Message, TextPart
from omnilink._store import SQLiteStore, Transaction
from omnilink._store._migrations import MIGRATIONS

BATCH = 100
THREADS = 1000
"""Conversations the events are spread over (each one a thread of its own)."""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def events(start: int, count: int) -> Iterator[Message]:
    for i in range(start, start + count):
        # Messages from many customers interleave: consecutive events land on scattered threads.
        thread = (i * 7919) % THREADS
        yield Message(
            id=f"msg_{i:012d}",
            conversation_id=f"cnv_{thread}",
            contact_id=f"con_{thread}",
            direction=Direction.INBOUND,
            channel="sms",
            account="+15550001111",
            thread_key=f"+1555{thread:07d}",
            author=Author(kind=AuthorKind.CONTACT),
            parts=(TextPart(text=f"message number {i}, asking about order {i * 7 % 100000}"),),
            provider_message_id=f"SM{i:032x}",
            status=DeliveryStatus.RECEIVED,
            sent_at=T0 + timedelta(seconds=i),
        )


def batches(start: int, count: int) -> Iterator[list[Message]]:
    pending: list[Message] = []
    for m in events(start, count):
        pending.append(m)
        if len(pending) == BATCH:
            yield pending
            pending = []
    if pending:
        yield pending


# --------------------------------------------------------------------------- omnilink store


async def store_write(store: SQLiteStore, start: int, count: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds to write ``count`` events through the store."""
    todo = list(batches(start, count))  # built outside the clock, like the baseline's
    began, cpu = time.perf_counter(), time.process_time()
    for batch in todo:

        def fn(tx: Transaction, batch: list[Message] = batch) -> None:
            for m in batch:
                assert m.provider_message_id is not None
                if tx.claim_inbound(m.channel, m.account, m.provider_message_id, m.id):
                    tx.insert_message(m)

        await store.run(fn)
    return time.perf_counter() - began, time.process_time() - cpu


# --------------------------------------------------------------------------- bare sqlite3

CLAIM = (
    "INSERT INTO inbound_claims (channel, account, provider_message_id, message_id)"
    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
INSERT = (
    "INSERT INTO messages (conversation_id, direction, channel, account, thread_key, sent_at, data, id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INDEX = (
    "INSERT INTO message_provider_ids (channel, account, provider_id, message_id)"
    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def bare_connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("BEGIN IMMEDIATE")
    for migration in MIGRATIONS:
        for statement in migration.sql["sqlite"]:
            conn.execute(statement)
    conn.execute("COMMIT")
    return conn


def bare_write(conn: sqlite3.Connection, start: int, count: int) -> tuple[float, float]:
    todo = list(batches(start, count))
    began, cpu = time.perf_counter(), time.process_time()
    for batch in todo:
        conn.execute("BEGIN IMMEDIATE")
        for m in batch:
            assert m.provider_message_id is not None
            claimed = conn.execute(CLAIM, (m.channel, m.account, m.provider_message_id, m.id)).rowcount
            if claimed:
                conn.execute(
                    INSERT,
                    (
                        m.conversation_id,
                        m.direction.value,
                        m.channel,
                        m.account,
                        m.thread_key,
                        m.sent_at.astimezone(UTC).isoformat(timespec="microseconds"),
                        m.model_dump_json(),
                        m.id,
                    ),
                )
                conn.execute(INDEX, (m.channel, m.account, m.provider_message_id, m.id))
        conn.execute("COMMIT")
    return time.perf_counter() - began, time.process_time() - cpu


# --------------------------------------------------------------------------- main


async def main(sizes: list[int], window: int, rounds: int, synchronous: str, directory: str | None) -> None:
    print(f"SQLite {sqlite3.sqlite_version}, WAL, synchronous={synchronous}, {BATCH} events per transaction,")
    print(f"events spread over {THREADS} conversations; at each size, {rounds} alternating rounds of")
    print(f"{window} events per side; medians in µs per event (wall clock, and CPU of the process)\n")
    print(f"{'stored':>8}  {'store wall':>10}  {'bare wall':>9}  {'ratio':>5}", end="")
    print(f"  {'store CPU':>9}  {'bare CPU':>8}  {'ratio':>5}")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        store = SQLiteStore(Path(tmp) / "store.sqlite3", synchronous=synchronous)  # type: ignore[arg-type]
        bare = bare_connect(Path(tmp) / "bare.sqlite3", synchronous)
        stored = 0
        figures: list[tuple[float, float, float, float]] = []
        async with store:
            for size in sizes:
                # Grow both databases to ``size`` (not timed), then time alternating windows.
                if size > stored:
                    await store_write(store, stored, size - stored)
                    bare_write(bare, stored, size - stored)
                    stored = size
                ours: list[tuple[float, float]] = []
                base: list[tuple[float, float]] = []
                for _ in range(rounds):
                    ours.append(await store_write(store, stored, window))
                    base.append(bare_write(bare, stored, window))
                    stored += window
                row = tuple(
                    statistics.median(run[k] for run in runs) / window * 1e6
                    for k in (0, 1)
                    for runs in (ours, base)
                )
                ow, bw, oc, bc = row
                figures.append((ow, bw, oc, bc))
                print(f"{size:>8}  {ow:>10.1f}  {bw:>9.1f}  {ow / bw:>4.2f}x", end="")
                print(f"  {oc:>9.1f}  {bc:>8.1f}  {oc / bc:>4.2f}x")
            count = await store.run(lambda tx: tx.count_messages())
        bare.close()
    first, last = figures[0], figures[-1]
    print(f"\n{count} messages stored by SQLiteStore at the end, in {directory or tempfile.gettempdir()}")
    print(
        f"growth {sizes[0]} -> {sizes[-1]} (1.00 = flat): store wall x{last[0] / first[0]:.2f},"
        f" bare wall x{last[1] / first[1]:.2f}, store CPU x{last[2] / first[2]:.2f},"
        f" bare CPU x{last[3] / first[3]:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated stored-message counts")
    parser.add_argument("--window", type=int, default=1000, help="events timed per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds at each size")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--dir", default=None, help="where the databases go (default: the temp dir)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    anyio.run(main, sizes, args.window, args.rounds, args.synchronous, args.dir)
