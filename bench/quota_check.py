"""The storage-quota read that precedes every /v1/match, as a key's history grows: the gateway's SQLite store
(`key_usage`: the running total in `key_storage`) against the sum over the key's searches it replaced, both
as SQL on one connection to the same database in the same run (the store's figure is checked to be the
same). The searches are real-shaped (a result of five matches, 6,000 bytes of photo each).

    .venv/bin/python bench/quota_check.py [--searches 1000 10000 100000]
"""

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from gateway.store import store_for

REPLACED = "SELECT COALESCE(SUM(bytes), 0) FROM searches WHERE key_id = ?"
RUNNING_TOTAL = "SELECT bytes FROM key_storage WHERE key_id = ?"  # what the store's key_usage reads


def a_search(key_id: str, now: float) -> dict:
    matches = [
        {"rank": r, "person_id": uuid.uuid4().hex, "face_id": 1, "name": "A Person", "metadata": {},
         "similarity": 0.5, "confidence": 0.1, "thumbnail_url": "/v1/persons/x/faces/1/thumbnail"}
        for r in range(1, 6)
    ]  # fmt: skip
    return {"id": uuid.uuid4().hex, "key_id": key_id, "created_at": now, "image_sha": uuid.uuid4().hex,
            "image_type": "image/jpeg", "heatmap_sha": None, "k": 5, "cached": False, "bytes": 6000,
            "result": {"matches": matches, "no_match": False, "threshold": None}}  # fmt: skip


def p50_ms(call, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


async def measure(path: Path, sizes: list[int]) -> list[tuple[int, float, float]]:
    rows = []
    async with store_for(f"sqlite:///{path}") as store:
        key_id, _ = await store.create_key("bench", "search")
        made, now, day = 0, time.time(), int(time.time() // 86400)
        for size in sizes:
            for _ in range(size - made):
                await store.add_search(a_search(key_id, now))
            made = size
            with sqlite3.connect(path) as db:  # both reads on one connection, nothing else running
                total = (await store.key_usage(key_id, day))[1]
                assert db.execute(REPLACED, (key_id,)).fetchone()[0] == total  # the same figure
                replaced = p50_ms(lambda: db.execute(REPLACED, (key_id,)).fetchone())
                ours = p50_ms(lambda: db.execute(RUNNING_TOTAL, (key_id,)).fetchone())
            rows.append((size, replaced, ours))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--searches", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        rows = asyncio.run(measure(Path(folder) / "gateway.sqlite3", sorted(args.searches)))
    print("Storage-quota read before each match, one key's stored searches, SQLite, ms p50 of 30\n")
    print("| searches of the key | sum over its searches (before) | key_storage total (now) |")
    print("|---|---|---|")
    for size, replaced, ours in rows:
        print(f"| {size:,} | {replaced:.3f} | {ours:.3f} |")
    print(f"\nLoad average {load:.1f} before, {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
