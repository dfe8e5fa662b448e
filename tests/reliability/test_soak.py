"""Soak (`make soak`, SOAK_SECONDS=600): mixed match / enrol / delete traffic at moderate load through the
gateway, sampling both services' memory (RSS of every process of each) and open file descriptors. Skipped
unless SOAK_SECONDS is set, so `make test` does not pay for it."""

import os
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest
from checks import assert_clean
from corpus import face_canvas, save

SECONDS = float(os.environ.get("SOAK_SECONDS", "0"))
# opt-in, not "cannot run here": a plain skipif, also on CI (testkit.require is for missing capabilities)
pytestmark = pytest.mark.skipif(not SECONDS, reason="a long test: run it with make soak (SOAK_SECONDS)")


def group_usage(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open fds) summed over the processes of a process group (gunicorn master + workers)."""
    rss, fds = 0.0, 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pid:  # the process group id
                continue
            rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            fds += len(os.listdir(proc / "fd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, fds


def test_soak(gateway, ai_server, admin, search):
    photos = [save(face_canvas(i % 8, size=300 + i), "JPEG") for i in range(60)]
    stop, problems, counts = threading.Event(), [], {"match": 0, "enrol": 0, "delete": 0}
    live: list[str] = []
    enrolled_photo: dict[str, bytes] = {}
    deleted: set[str] = set()
    lock = threading.Lock()

    def check(reply, expected):
        try:
            assert_clean(reply)
            assert reply.status_code in expected, reply.text[:200]
        except AssertionError as err:
            problems.append(str(err))

    def matcher(t):
        n = 0
        while not stop.is_set():
            with lock:
                gone = set(deleted)
            reply = search.match(photos[(7 * n + 13 * t) % 60])
            check(reply, (200,))
            if reply.status_code == 200:
                shown = {m["person_id"] for m in reply.json()["matches"]}
                if shown & gone:
                    problems.append(f"a deleted person was returned: {shown & gone}")
            counts["match"] += 1
            n += 1
            time.sleep(0.05)

    def enroller():
        n = 0
        while not stop.is_set():
            files = {"image": ("p.jpg", photos[n % 60])}
            reply = admin("POST", "/v1/persons", data={"name": f"soak {n}"}, files=files)
            check(reply, (201,))
            if reply.status_code == 201:
                with lock:
                    live.append(reply.json()["person"]["id"])
                    enrolled_photo[live[-1]] = photos[n % 60]
                counts["enrol"] += 1
            if len(live) > 20:
                person = live.pop(0)
                check(admin("DELETE", f"/v1/persons/{person}"), (200,))
                with lock:
                    deleted.add(person)
                counts["delete"] += 1
            n += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=matcher, args=(t,)) for t in range(3)]
    threads.append(threading.Thread(target=enroller))
    samples = []
    started = time.time()
    for thread in threads:
        thread.start()
    try:
        while time.time() - started < SECONDS:
            time.sleep(min(10, SECONDS / 20))
            usage = (*group_usage(gateway.process.pid), *group_usage(ai_server.process.pid))
            samples.append((time.time() - started, *usage))
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    print("\n  s    gateway MiB  fds   ai-server MiB  fds")
    for s in samples:
        print(f"{s[0]:5.0f}  {s[1]:10.0f}  {s[2]:4d}  {s[3]:13.0f}  {s[4]:4d}")
    print(f"requests: {counts}; problems: {len(problems)}")
    assert not problems, problems[:5]
    assert counts["match"] > 50 and counts["delete"] > 5, counts

    warm = [s for s in samples if s[0] >= SECONDS * 0.25]  # after warm-up: caches and arenas filled
    early, late = warm[: max(1, len(warm) // 4)], warm[-max(1, len(warm) // 4) :]
    for column, name in ((1, "gateway"), (3, "ai-server")):
        before = statistics.median(s[column] for s in early)
        after = statistics.median(s[column] for s in late)
        assert after <= before * 1.10 + 20, f"{name} RSS grew from {before:.0f} to {after:.0f} MiB"
    for column, name in ((2, "gateway"), (4, "ai-server")):
        assert max(s[column] for s in late) <= max(s[column] for s in early) + 8, f"{name} leaks descriptors"

    # the gallery, its database and its index agree
    root = Path(ai_server.env["AI_SERVER_DATA_DIR"])
    with sqlite3.connect(root / "gallery.sqlite3") as db:
        persons, faces = (db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("persons", "faces"))
    listed = admin("GET", "/v1/persons?limit=500").json()
    stats = admin("GET", "/readyz", key=None).json()["ai_server"]["gallery"]
    assert listed["total"] == persons == stats["persons"] and stats["faces"] == faces, (persons, faces, stats)
    ids = {p["id"] for p in listed["persons"]}
    assert ids >= set(live) and not ids & deleted
    for person in live[-5:]:  # the index finds what the database holds, and only that
        found = search.match(enrolled_photo[person], k=50).json()["matches"]
        ids = {m["person_id"] for m in found}
        assert person in ids and not ids & deleted, (person, ids & deleted)
