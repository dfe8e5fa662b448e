"""The SQLite store against a real file: a database call that has to wait (another connection holds SQLite's
write lock, as a backup or a second process would) leaves the event loop free (test_resilience.py checks
the same through a real gateway); concurrent calls each run whole; a full database is a full disk."""

import asyncio
import sqlite3
import time

import pytest
from gateway.errors import storage_full
from gateway.store import store_for

HOLD_S = 1.5


def failure(request_id: str) -> dict:
    return {
        "ts": time.time(),
        "request_id": request_id,
        "kind": "rejected",
        "method": "GET",
        "path": "/v1/searches",
        "status": 401,
        "code": "unauthorized",
        "reason": "",
        "ms": 1.0,
    }


async def heartbeats(seconds: float) -> int:
    """How many 10 ms sleeps the event loop manages in `seconds` (about 100 a second when it is free)."""
    beats, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        beats += 1
    return beats


def test_a_waiting_database_call_leaves_the_event_loop_free(tmp_path):
    async def scenario():
        async with store_for(f"sqlite:///{tmp_path}/g.sqlite3") as store:
            other = sqlite3.connect(tmp_path / "g.sqlite3", isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held elsewhere
            started = time.monotonic()
            write = asyncio.create_task(store.add_failure(failure("waiting")))
            beats = await heartbeats(HOLD_S)
            assert not write.done(), "the write should still be waiting for the lock"
            other.execute("ROLLBACK")
            await write
            waited = time.monotonic() - started
            other.close()
            rows, total = await store.list_failures(0, 10)
            return beats, waited, rows, total

    beats, waited, rows, total = asyncio.run(scenario())
    assert waited >= HOLD_S
    # free: about 150 beats (fewer on a loaded machine); blocked by the database call: 1
    assert beats >= 10, f"the loop ran only {beats} times while the database waited"
    assert total == 1 and rows[0]["request_id"] == "waiting"


def test_calls_run_in_order_on_one_database_thread(tmp_path):
    """Many concurrent writes and reads: each is whole (one thread, no interleaved transactions)."""

    async def scenario():
        async with store_for(f"sqlite:///{tmp_path}/g.sqlite3") as store:
            await asyncio.gather(*(store.add_failure(failure(f"r{i}")) for i in range(50)))
            keys = await asyncio.gather(*(store.create_key(f"k{i}", "search") for i in range(20)))
            found = await asyncio.gather(*(store.check_key(token) for _, token in keys))
            return await store.list_failures(0, 100), keys, found

    (rows, total), keys, found = asyncio.run(scenario())
    assert total == 50 and {r["request_id"] for r in rows} == {f"r{i}" for i in range(50)}
    assert [f.key_id for f in found] == [key_id for key_id, _ in keys]


def test_a_full_database_is_reported_as_a_full_disk(tmp_path):
    """SQLite's "database or disk is full" leaves the store as OSError(ENOSPC), the one thing the HTTP layer
    turns into 507 for files and databases alike; the failed write leaves nothing behind."""

    def cap_size(db, pages):  # a size limit SQLite enforces itself: the same error as a full disk
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db.execute("PRAGMA page_count").fetchone()[0]

    async def scenario():
        async with store_for(f"sqlite:///{tmp_path}/g.sqlite3") as store:
            pages = await store._run(cap_size, 1_000_000)
            await store._run(cap_size, pages)
            with pytest.raises(OSError) as full:
                await store.add_failure({**failure("too big"), "reason": "x" * 200_000})
            await store._run(cap_size, 1_000_000)
            await store.add_failure(failure("fits again"))
            return full.value, await store.list_failures(0, 10)

    error, (rows, total) = asyncio.run(scenario())
    assert storage_full(error) and "full" in str(error)
    assert total == 1 and rows[0]["request_id"] == "fits again"
