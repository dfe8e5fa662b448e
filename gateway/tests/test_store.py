"""Each store against its real database (a SQLite file, a database of the session's PostgreSQL cluster): a
database call that has to wait (another connection holds the write lock, as a backup, a migration or a
second gateway would) leaves the event loop free (test_resilience.py checks the same through a real
gateway); concurrent calls each run whole; a full database is a full disk; the migrations adopt a
database made before them; two gateways' stores on one PostgreSQL see each other's writes at once."""

import asyncio
import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest
import sqlalchemy
import testkit
from conftest import BIN
from gateway.errors import storage_full
from gateway.store import migrate, schema, store_for

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


@contextlib.contextmanager
def write_lock(url: str):
    """Another connection holding what a write to the failure log needs, until the block ends."""
    if url.startswith("sqlite"):
        other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
    else:
        other = psycopg.connect(url)
        other.execute("LOCK TABLE failures IN EXCLUSIVE MODE")  # readers go on, writers wait
    try:
        yield
    finally:
        other.rollback()  # both drivers' connections end their transaction the same way
        other.close()


def test_a_waiting_database_call_leaves_the_event_loop_free(store_url):
    async def scenario():
        async with store_for(store_url) as store:
            with write_lock(store_url):
                started = time.monotonic()
                write = asyncio.create_task(store.add_failure(failure("waiting")))
                beats = await heartbeats(HOLD_S)
                assert not write.done(), "the write should still be waiting for the lock"
            await write
            waited = time.monotonic() - started
            rows, total = await store.list_failures(0, 10)
            return beats, waited, rows, total

    beats, waited, rows, total = asyncio.run(scenario())
    assert waited >= HOLD_S
    # free: about 150 beats (fewer on a loaded machine); blocked by the database call: 1
    assert beats >= 10, f"the loop ran only {beats} times while the database waited"
    assert total == 1 and rows[0]["request_id"] == "waiting"


def test_concurrent_calls_each_run_whole(store_url):
    """Many concurrent writes and reads: each is whole (SQLite: one thread; PostgreSQL: one pooled
    connection and transaction per call)."""

    async def scenario():
        async with store_for(store_url) as store:
            await asyncio.gather(*(store.add_failure(failure(f"r{i}")) for i in range(50)))
            keys = await asyncio.gather(*(store.create_key(f"k{i}", "search") for i in range(20)))
            found = await asyncio.gather(*(store.check_key(token) for _, token in keys))
            return await store.list_failures(0, 100), keys, found

    (rows, total), keys, found = asyncio.run(scenario())
    assert total == 50 and {r["request_id"] for r in rows} == {f"r{i}" for i in range(50)}
    assert [f.key_id for f in found] == [key_id for key_id, _ in keys]


def test_a_full_sqlite_database_is_reported_as_a_full_disk(tmp_path):
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


DISK_FULL_TRIGGER = """
CREATE FUNCTION fill_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF length(NEW.reason) > 100000 THEN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON failures FOR EACH ROW EXECUTE FUNCTION fill_disk();
"""


def test_a_full_postgresql_disk_is_reported_as_a_full_disk(postgres):
    """The server's disk_full (SQLSTATE 53100, what PostgreSQL answers when it cannot extend a file; raised
    here by a trigger, as a test cannot fill the machine's disk) is OSError(ENOSPC) too, and the write's
    transaction leaves nothing behind."""

    async def scenario(url):
        async with store_for(url) as store:
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(DISK_FULL_TRIGGER)
            with pytest.raises(OSError) as full:
                await store.add_failure({**failure("too big"), "reason": "x" * 200_000})
            await store.add_failure(failure("fits"))
            return full.value, await store.list_failures(0, 10)

    with postgres.database() as url:
        error, (rows, total) = asyncio.run(scenario(url))
    assert storage_full(error) and "full" in str(error)
    assert total == 1 and rows[0]["request_id"] == "fits"


DDL_ON_A_FULL_DISK = """
CREATE FUNCTION full_disk_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
  RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$;
CREATE EVENT TRIGGER full_disk_ddl ON ddl_command_start EXECUTE FUNCTION full_disk_ddl();
"""


def test_a_migration_on_a_full_disk_is_reported_as_a_full_disk(postgres, tmp_path):
    """The migrations run in a child process; what fails there comes back as what the store raises for it:
    PostgreSQL's disk_full during the first CREATE TABLE (an event trigger raises it, as a test cannot fill
    the disk) as OSError(ENOSPC), and an OSError of SQLite's file (its folder is a file) as itself."""
    with postgres.database() as url:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(DDL_ON_A_FULL_DISK)
        with pytest.raises(OSError) as full:
            asyncio.run(store_for(url).open())
        assert schema.current(url) is None  # nothing half-made
    assert storage_full(full.value) and "full" in str(full.value)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError) as not_a_folder:
        asyncio.run(store_for(f"sqlite:///{tmp_path}/a-file/g.sqlite3").open())
    assert not_a_folder.value.errno == errno.EEXIST and "a-file" in str(not_a_folder.value)


def test_a_serving_gateway_never_loads_alembic_or_sqlalchemy(store_url):
    """The server and its store, opened on a new database (migrated in a child) and again on a migrated
    one (no child at all): neither leaves alembic or SQLAlchemy in the serving process's memory."""
    code = f"""
import asyncio, sys, gateway.http.app
from gateway.store import store_for
async def open_twice():
    for _ in range(2):
        async with store_for({store_url!r}):
            pass
asyncio.run(open_twice())
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"alembic", "sqlalchemy", "mako"}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert schema.current(store_url) == migrate.HEAD == schema.head()


# The schema of the gateway before migrations: version 2 (PRAGMA user_version 2), and the very first one,
# whose keys could not expire and whose searches kept neither sizes nor the faces they listed.
LEGACY_SCHEMA = """
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL,
    created_at REAL NOT NULL{key_columns});
CREATE TABLE searches (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at REAL NOT NULL,
    image_sha TEXT NOT NULL, image_type TEXT NOT NULL, heatmap_sha TEXT, k INTEGER NOT NULL,
    cached INTEGER NOT NULL, result TEXT NOT NULL{search_columns});
CREATE INDEX searches_by_key ON searches (key_id, created_at);
CREATE TABLE {links};
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE, key_id TEXT NOT NULL,
    person_id TEXT NOT NULL, correct INTEGER NOT NULL, comment TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE key_usage (key_id TEXT NOT NULL, day INTEGER NOT NULL, searches INTEGER NOT NULL,
    PRIMARY KEY (key_id, day));
CREATE TABLE failures (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL,
    kind TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    code TEXT NOT NULL, reason TEXT NOT NULL, ms REAL NOT NULL, key_id TEXT);
PRAGMA user_version = {version};
"""
VERSIONS = {
    2: {
        "key_columns": ", expires_at REAL, revoked_at REAL, last_used_at REAL",
        "search_columns": ", bytes INTEGER NOT NULL DEFAULT 0",
        "links": "search_faces (search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE,"
        " person_id TEXT NOT NULL, face_id INTEGER NOT NULL, PRIMARY KEY (search_id, person_id, face_id))",
    },
    0: {"key_columns": "", "search_columns": "", "links": "search_persons (search_id TEXT, person_id TEXT)"},
}


def legacy_database(path, version: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(LEGACY_SCHEMA.format(version=version, **VERSIONS[version]))
    result = '{"matches": [{"person_id": "p1", "face_id": 3, "name": "Ann"}]}'
    db.execute(
        "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES ('k1', 'old', 'admin', 'h', 1)"
    )
    db.execute(
        "INSERT INTO searches (id, key_id, created_at, image_sha, image_type, heatmap_sha, k, cached, result)"
        " VALUES ('s1', 'k1', 1.5, 'sha', 'image/jpeg', NULL, 5, 0, ?)",
        (result,),
    )
    if version == 2:
        db.execute("INSERT INTO search_faces VALUES ('s1', 'p1', 3)")
    db.execute(
        "INSERT INTO feedback (search_id, key_id, person_id, correct, comment, created_at)"
        " VALUES ('s1', 'k1', 'p1', 1, 'yes', 2.0)"
    )
    db.close()


@pytest.mark.parametrize("version", [2, 0])
def test_a_database_from_before_migrations_is_adopted_in_place(tmp_path, version):
    """Tables and no alembic_version: opening the store upgrades it without losing a row, adds the columns
    and links an old one lacks, and records the revision; opening it again changes nothing."""
    path = tmp_path / "old.sqlite3"
    legacy_database(path, version)
    url = f"sqlite:///{path}"

    async def scenario():
        async with store_for(url) as store:
            search = await store.get_search("s1")
            shown = await store.searches_showing("k1", "p1", 3)
            keys = await store.list_keys()
            await store.add_search({**search, "id": "s2", "bytes": 10, "feedback": None})
            return search, shown, keys, await store.key_usage("k1", 0)

    search, shown, keys, usage = asyncio.run(scenario())
    assert search["result"]["matches"][0]["name"] == "Ann" and search["feedback"][0]["comment"] == "yes"
    assert [s["id"] for s in shown] == ["s1"]  # the link: kept (v2) or filled in from the result (v0)
    assert keys[0]["id"] == "k1" and keys[0]["active"] and usage == (1, 10)
    assert schema.current(url) == schema.head()
    assert schema.upgrade(url) == schema.head()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "search_persons" not in tables and "alembic_version" in tables


def test_the_operators_upgrade_command(store_url):
    """`gateway db upgrade` brings a new database to the newest revision; `gateway db current` says so."""
    assert schema.current(store_url) is None
    env = {**os.environ, "GATEWAY_DATABASE_URL": store_url}
    run = [BIN / "gateway", "db"]
    done = subprocess.run([*run, "upgrade"], env=env, capture_output=True, text=True, check=True)
    after = subprocess.run([*run, "current"], env=env, capture_output=True, text=True, check=True)
    assert schema.head() in done.stdout and after.stdout.strip() == schema.head()


def test_two_stores_on_one_postgresql_share_keys_searches_and_quotas(postgres):
    """What two gateways see through their own pools: a key made by one is checked (and its revocation
    holds) on the other at once; the daily usage the quota reads is the sum of both."""

    async def scenario(url):
        async with store_for(url) as one, store_for(url) as other:
            key_id, token = await one.create_key("shared", "search")
            assert (await other.check_key(token)).key_id == key_id
            search = {
                "key_id": key_id,
                "image_sha": "",
                "image_type": "image/jpeg",
                "heatmap_sha": None,
                "k": 1,
                "cached": False,
                "result": {"matches": []},
                "bytes": 7,
            }
            now = time.time()
            await asyncio.gather(
                *(
                    store.add_search({**search, "id": f"s{i}", "created_at": now})
                    for i, store in enumerate([one, other] * 5)
                )
            )
            usage = (
                await one.key_usage(key_id, int(now // 86400)),
                await other.key_usage(key_id, int(now // 86400)),
            )
            await other.revoke_key(key_id)
            return usage, await one.check_key(token)

    with postgres.database() as url:
        usage, after_revocation = asyncio.run(scenario(url))
    assert usage == ((10, 70), (10, 70)) and after_revocation is None


def a_search(search_id: str, key_id: str, person: str, created_at: float, **more) -> dict:
    match = {"person_id": person, "face_id": 2, "name": "Ann", "metadata": {"case": "x"}, "similarity": 0.5}
    search = {
        "id": search_id,
        "key_id": key_id,
        "created_at": created_at,
        "image_sha": f"img-{search_id}",
        "image_type": "image/jpeg",
        "heatmap_sha": None,
        "k": 3,
        "cached": False,
        "result": {"matches": [match], "threshold": 0.4, "versions": {"model": "m1"}},
        "bytes": 100,
    }
    return {**search, **more}


async def fill(url: str) -> dict:
    """A store with some of everything: keys (one revoked), searches with links and feedback, failures."""
    async with store_for(url) as store:
        (admin, admin_token), (searcher, search_token) = [
            await store.create_key(name, role) for name, role in (("ops", "admin"), ("app", "search"))
        ]
        await store.revoke_key((await store.create_key("old", "enrol"))[0])
        now = time.time()
        for i in range(30):
            await store.add_search(a_search(f"s{i:02}", searcher, f"p{i % 4}", now - i, cached=i % 2 == 0))
            if i % 3 == 0:
                await store.add_feedback(f"s{i:02}", searcher, f"p{i % 4}", i % 2 == 0, f"note {i}")
        for i in range(5):
            await store.add_failure({**failure(f"f{i}"), "key_id": admin})
        await store.erase_person("p3")
        return {"tokens": (admin_token, search_token), "searcher": searcher}


async def contents(url: str, searcher: str) -> dict:
    async with store_for(url) as store:
        searches, total = await store.list_searches(None, 0, 100)
        return {
            "keys": await store.list_keys(),
            "searches": [await store.get_search(s["id"]) for s in searches],
            "total": total,
            "failures": await store.list_failures(0, 100),
            "usage": await store.key_usage(searcher, int(time.time() // 86400)),
            "shown": [s["id"] for s in await store.searches_showing(searcher, "p1", 2)],
        }


def test_the_stored_bytes_a_quota_reads_follow_every_change_to_the_searches(store_url):
    """The storage quota reads a running total the database keeps (triggers), not a sum over the key's
    history: after adding, erasing a person, purging photos, deleting and purging searches it is still
    exactly what the searches hold, per key, on both backends."""

    def summed(key_id: str) -> int:
        sql = f"SELECT COALESCE(SUM(bytes), 0) FROM searches WHERE key_id = '{key_id}'"  # ours, not input
        if store_url.startswith("sqlite"):
            return sqlite3.connect(store_url.removeprefix("sqlite:///")).execute(sql).fetchone()[0]
        with psycopg.connect(store_url) as db:
            return db.execute(sql).fetchone()[0]

    async def scenario():
        seen = []
        async with store_for(store_url) as store:
            now = time.time()
            for i in range(12):
                key, age = ("ka", "kb")[i % 2], 86400 * (i // 4)  # some a day, some two days old
                await store.add_search(a_search(f"s{i}", key, f"p{i % 3}", now - age, bytes=100 + i))
            steps = [
                lambda: store.erase_person("p1"),
                lambda: store.purge_photos(now - 86400 / 2),
                lambda: store.delete_search("s0"),
                lambda: store.purge_searches(now - 86400 * 1.5),
            ]
            for step in [None, *steps]:
                if step:
                    await step()
                day = int(now // 86400)
                seen.append([((await store.key_usage(k, day))[1], summed(k)) for k in ("ka", "kb", "kc")])
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == [(630, 630), (636, 636), (0, 0)]
    for step in seen:
        assert all(total == summed for total, summed in step), step
    assert [step[0][0] for step in seen] == [630, 416, 202, 102, 102]  # what each step left of ka's


def test_the_upgrade_to_the_running_total_sums_the_searches_already_stored(store_url):
    """A database at 0001 with searches: after the upgrade the quota reads what those searches hold."""
    schema.upgrade(store_url, to="0001")
    columns = ["id", "key_id", "created_at", "image_sha", "image_type", "k", "cached", "result", "bytes"]
    insert = f"INSERT INTO searches ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    with schema.connection(store_url) as db:
        for i, key in enumerate(["ka", "ka", "kb"]):
            search = a_search(f"s{i}", key, "p1", time.time(), bytes=1000 + i, cached=0, result="{}")
            db.execute(sqlalchemy.text(insert), {c: search[c] for c in columns})

    async def usage():
        async with store_for(store_url) as store:  # opening upgrades it to the head
            return [(await store.key_usage(k, 0))[1] for k in ("ka", "kb", "kc")]

    assert asyncio.run(usage()) == [2001, 1002, 0] and schema.current(store_url) == schema.head()


def test_copying_sqlite_into_postgresql_loses_nothing(tmp_path, postgres):
    """`gateway db copy`: every table's rows, each search's result JSON and feedback equal, the keys'
    tokens work on the copy (a revoked one stays revoked); a second copy into the filled target is refused
    and changes nothing; the copy's ids go on after the copied ones."""
    source = f"sqlite:///{tmp_path}/gateway.sqlite3"
    made = asyncio.run(fill(source))
    with postgres.database() as target:
        copy = [BIN / "gateway", "db", "copy", "--from", source, "--to", target]
        done = subprocess.run(copy, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        copied = json.loads(done.stdout)["copied"]
        assert copied == {
            "api_keys": 3,
            "searches": 30,
            "search_faces": 23,  # p3 was erased: its 7 links and 3 feedback went
            "feedback": 7,
            "key_usage": 1,
            "failures": 5,
        }
        before, after = (
            asyncio.run(contents(source, made["searcher"])),
            asyncio.run(contents(target, made["searcher"])),
        )
        assert after == before and after["total"] == 30 and after["usage"] == (30, 2300)
        assert [s["result"] for s in after["searches"]] == [s["result"] for s in before["searches"]]
        again = subprocess.run(copy, capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "already has rows" in again.stderr
        assert asyncio.run(contents(target, made["searcher"])) == before

        async def use_the_copy():
            async with store_for(target) as store:
                found = [await store.check_key(t) for t in made["tokens"]]
                feedback = await store.add_feedback("s01", made["searcher"], "p1", True, "after the move")
                return found, feedback["id"]

        found, new_id = asyncio.run(use_the_copy())
    assert [k.role for k in found] == ["admin", "search"]
    assert new_id > max(f["id"] for s in before["searches"] for f in s["feedback"])


def test_an_unreachable_postgresql_is_named_without_its_password():
    url = f"postgresql://gateway:hunter2-secret@127.0.0.1:{testkit.free_port()}/gateway"
    with pytest.raises(ConnectionError) as refused:
        asyncio.run(store_for(url).open())
    assert "127.0.0.1" in str(refused.value) and "hunter2" not in str(refused.value)
