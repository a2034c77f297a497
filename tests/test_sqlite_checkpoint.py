"""SQLite's WAL folded into the database by the store's background checkpoint thread."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import anyio
import pytest

from omnilink import SQLiteStore
from omnilink._models import Contact
from omnilink._store._sqlite import CHECKPOINT_EVERY_COMMITS, CHECKPOINT_INTERVAL, _Checkpointer


async def add_contacts(store: SQLiteStore, count: int) -> None:
    for _ in range(count):
        await store.run(lambda tx: tx.insert_contact(Contact()))


def contacts_in_database_file(path: Path, tmp_path: Path) -> int:
    """Contacts in the database file alone: a copy without its WAL holds checkpointed pages only."""
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'contacts'").fetchone() is None:
            return 0  # not even the schema has been checkpointed yet
        return int(conn.execute("SELECT count(*) FROM contacts").fetchone()[0])
    finally:
        conn.close()
        copy.unlink()


@pytest.mark.anyio
async def test_background_thread_folds_commits_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    count = CHECKPOINT_EVERY_COMMITS * 2
    async with SQLiteStore(path) as store:
        await add_contacts(store, count)
        with anyio.fail_after(10):
            while contacts_in_database_file(path, tmp_path) < count:  # noqa: ASYNC110 (a file, not a task)
                await anyio.sleep(0.05)
        assert store.checkpoints >= 1
        assert (path.parent / "db.sqlite3-wal").exists()  # the store still runs in WAL mode


@pytest.mark.anyio
async def test_without_the_thread_commits_stay_in_the_wal_until_it_fills(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with SQLiteStore(path, background_checkpoint=False) as store:
        await add_contacts(store, CHECKPOINT_EVERY_COMMITS * 2)
        await anyio.sleep(CHECKPOINT_INTERVAL * 1.5)  # a background thread would have run by now
        assert contacts_in_database_file(path, tmp_path) == 0
        assert store.checkpoints == 0
        # The writer keeps SQLite's own automatic checkpoints.
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == CHECKPOINT_EVERY_COMMITS * 2
        conn.close()


@pytest.mark.anyio
async def test_closing_the_store_stops_the_thread_and_keeps_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    checkpointer = store._checkpointer
    assert checkpointer is not None
    assert checkpointer.running
    contacts = [Contact() for _ in range(5)]
    for c in contacts:
        await store.run(lambda tx, c=c: tx.insert_contact(c))
    await store.aclose()
    assert not checkpointer.running
    assert store.checkpoints == 0  # reported for the open store only
    async with SQLiteStore(path) as reopened:
        for c in contacts:
            assert await reopened.run(lambda tx, c=c: tx.get_contact(c.id)) == c


@pytest.mark.anyio
async def test_in_memory_database_has_no_thread() -> None:
    async with SQLiteStore(":memory:") as store:
        assert store._checkpointer is None
        await add_contacts(store, 3)


def test_a_failing_checkpoint_is_logged_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"not a database" * 1000)
    checkpointer = _Checkpointer(str(path), "FULL")
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while checkpointer.failures < 2 and time.monotonic() < deadline:
            checkpointer.nudge()
            time.sleep(0.02)
        assert checkpointer.failures >= 2  # each wake-up tries again
        assert checkpointer.running
    finally:
        checkpointer.stop()
    assert not checkpointer.running
    assert "failed (retried)" in caplog.text


def test_a_checkpointer_that_cannot_open_the_file_ends_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = _Checkpointer(str(tmp_path / "missing" / "db.sqlite3"), "FULL")
    checkpointer.start()
    checkpointer.stop()
    assert not checkpointer.running
    assert "cannot open" in caplog.text
