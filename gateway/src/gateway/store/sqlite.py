"""The SQLite store (`sqlite:///path`): WAL mode, one connection, owned by one dedicated thread.

Why a one-thread executor rather than aiosqlite: every method below is one plain synchronous function that
runs whole on that thread, so a multi-statement transaction (a search and its persons, a redaction) can
never interleave with another coroutine's statements on the shared connection, and it costs one hop off
the event loop per method instead of one per statement. Calls queue in order on that thread; SQLite has
one writer at a time anyway. The event loop only ever awaits.

The file is created readable by its owner only (the WAL and shared-memory files inherit its mode), and
`secure_delete` is on: what a deletion or an update removes is overwritten with zeros, not left in free
space; `compact()` then truncates the WAL, the other place old page images live. The tables come from
the migrations (schema.py), run before the connection is made (in a child process: migrate.py).
"""

import asyncio
import contextlib
import errno
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from . import keys, migrate
from .base import Erased, Failure, Feedback, KeyInfo, Search, Store
from .records import (
    FAILURE_COLUMNS,
    KEY_COLUMNS,
    SEARCH_COLUMNS,
    TOUCH_EVERY_S,
    erased,
    key_info,
    key_usable,
    listed_faces,
    redacted,
    search_record,
    search_values,
    usage_day,
)

Statement = tuple[str, tuple]
TOUCH_WAIT_MS = 200
BUSY_TIMEOUT_S = 10


class SqliteStore(Store):
    def __init__(self, path: Path):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-sqlite")

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        """function(connection, *args) on the database thread; a full disk comes back as OSError(ENOSPC)."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        job = partial(_translating_full_disk, function, self._db, *args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, job)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._thread, _connect, self.path)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)

    async def writable(self) -> bool:
        return await self._run(_writable)

    async def compact(self) -> bool:
        return await self._run(_checkpoint)

    # -- API keys ------------------------------------------------------------------------------------------
    async def create_key(self, name: str, role: str, expires_at: float | None = None) -> tuple[str, str]:
        key = keys.new_key(role)
        sql = "INSERT INTO api_keys (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)"
        row = (key.key_id, name, role, key.hash, time.time(), expires_at)
        await self._run(_transaction, [(sql, row)])
        return key.key_id, key.token

    async def check_key(self, token: str) -> keys.ApiKey | None:
        key_id, secret = keys.split_token(token)
        sql = "SELECT role, hash, expires_at, revoked_at, last_used_at FROM api_keys WHERE id = ?"
        row = await self._run(_one, sql, (key_id,))
        if not keys.secret_matches(secret, row["hash"] if row else None):
            return None
        now = time.time()
        if not key_usable(row, now):
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY_S:
            await self._run(_touch_key, key_id, now)
        return keys.ApiKey(key_id, row["role"])

    async def count_keys(self, role: str) -> int:
        return (await self._run(_one, "SELECT COUNT(*) FROM api_keys WHERE role = ?", (role,)))[0]

    async def list_keys(self) -> list[KeyInfo]:
        rows = await self._run(_all, f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC", ())
        return [key_info(dict(r)) for r in rows]

    async def revoke_key(self, key_id: str) -> KeyInfo | None:
        return await self._run(_revoke_key, key_id, time.time())

    # -- searches and feedback -----------------------------------------------------------------------------
    async def add_search(self, search: Search) -> None:
        await self._run(_transaction, _search_rows(search))

    async def get_search(self, search_id: str) -> Search | None:
        return await self._run(_get_search, search_id)

    async def list_searches(self, key_id: str | None, offset: int, limit: int) -> tuple[list[Search], int]:
        where, args = ("WHERE key_id = ?", (key_id,)) if key_id else ("", ())
        order = "ORDER BY created_at DESC, id"
        rows, total = await self._run(_page, "searches", where, args, order, offset, limit)
        return [search_record(dict(r)) for r in rows], total

    async def searches_showing(self, key_id: str, person_id: str, face_id: int) -> list[Search]:
        sql = (
            "SELECT s.* FROM search_faces f JOIN searches s ON s.id = f.search_id"
            " WHERE f.person_id = ? AND f.face_id = ? AND s.key_id = ? ORDER BY s.created_at DESC LIMIT 5"
        )
        return [search_record(dict(r)) for r in await self._run(_all, sql, (person_id, face_id, key_id))]

    async def key_usage(self, key_id: str, day: int) -> tuple[int, int]:
        return await self._run(_key_usage, key_id, day)

    async def add_feedback(
        self, search_id: str, key_id: str, person_id: str, correct: bool, comment: str
    ) -> Feedback:
        now = time.time()
        sql = (
            "INSERT INTO feedback (search_id, key_id, person_id, correct, comment, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )
        (cursor,) = await self._run(
            _transaction, [(sql, (search_id, key_id, person_id, int(correct), comment, now))]
        )
        return {
            "id": cursor.lastrowid,
            "search_id": search_id,
            "person_id": person_id,
            "correct": correct,
            "comment": comment,
            "created_at": now,
            "key_id": key_id,
        }

    async def erase_person(self, person_id: str, face_id: int | None = None) -> Erased:
        return await self._run(_erase_person, person_id, face_id)

    async def delete_search(self, search_id: str) -> Erased:
        return await self._run(_delete_search, search_id)

    async def purge_searches(self, before: float) -> set[str]:
        return await self._run(_purge_searches, before)

    async def purge_photos(self, before: float) -> set[str]:
        return await self._run(_purge_photos, before)

    async def image_referenced(self, sha: str) -> bool:
        return await self._run(_image_referenced, sha)

    async def referenced_images(self) -> set[str]:
        rows = await self._run(_all, "SELECT image_sha, heatmap_sha FROM searches", ())
        return {sha for row in rows for sha in row if sha}

    # -- failure log ---------------------------------------------------------------------------------------
    async def add_failure(self, entry: Failure) -> None:
        columns, marks = ", ".join(FAILURE_COLUMNS), ", ".join("?" * len(FAILURE_COLUMNS))
        values = tuple(entry.get(c) for c in FAILURE_COLUMNS)
        await self._run(_transaction, [(f"INSERT INTO failures ({columns}) VALUES ({marks})", values)])

    async def list_failures(
        self, offset: int, limit: int, request_id: str | None = None
    ) -> tuple[list[Failure], int]:
        where, args = ("WHERE request_id = ?", (request_id,)) if request_id else ("", ())
        rows, total = await self._run(_page, "failures", where, args, "ORDER BY id DESC", offset, limit)
        return [dict(r) for r in rows], total


# -- on the database thread ------------------------------------------------------------------------------
def _translating_full_disk(function: Callable[..., Any], db: sqlite3.Connection, *args: Any) -> Any:
    try:
        return function(db, *args)
    except sqlite3.OperationalError as err:
        if err.sqlite_errorcode == sqlite3.SQLITE_FULL or "full" in str(err):
            raise OSError(errno.ENOSPC, f"the database is full: {err}") from err
        raise


def _connect(path: Path) -> sqlite3.Connection:
    if migrate.sqlite_revision(path) != migrate.HEAD:
        migrate.upgrade_in_child(f"sqlite:///{path}")  # which creates the file, owner-only
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA secure_delete=ON")
    return db


def _transaction(db: sqlite3.Connection, statements: list[Statement]) -> list[sqlite3.Cursor]:
    """Several statements as one transaction: all of them or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        out = [db.execute(sql, args) for sql, args in statements]
        db.execute("COMMIT")
        return out
    except BaseException:
        if db.in_transaction:  # SQLite has already rolled back after "database or disk is full"
            db.execute("ROLLBACK")
        raise


def _one(db: sqlite3.Connection, sql: str, args: tuple) -> sqlite3.Row | None:
    return db.execute(sql, args).fetchone()


def _all(db: sqlite3.Connection, sql: str, args: tuple) -> list[sqlite3.Row]:
    return db.execute(sql, args).fetchall()


def _writable(db: sqlite3.Connection) -> bool:
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.Error:
        return False


def _checkpoint(db: sqlite3.Connection) -> bool:
    """The WAL copied into the database and truncated to nothing (retried while a reader holds it)."""
    for _ in range(20):
        if not db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            return True
        time.sleep(0.05)
    return False


def _touch_key(db: sqlite3.Connection, key_id: str, now: float) -> None:
    """Best effort and brief: a locked or full database must neither refuse nor hold up a valid key."""
    db.execute(f"PRAGMA busy_timeout = {TOUCH_WAIT_MS}")
    try:
        with contextlib.suppress(sqlite3.OperationalError):
            _transaction(db, [("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))])
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")


def _revoke_key(db: sqlite3.Connection, key_id: str, now: float) -> KeyInfo | None:
    sql = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"
    _transaction(db, [(sql, (now, key_id))])
    row = db.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else key_info(dict(row))


def _page(db, table: str, where: str, args: tuple, order: str, offset: int, limit: int):
    """One page of a table and the total, read together (`table`, `where` and `order` are ours, not input)."""
    total = db.execute(f"SELECT COUNT(*) FROM {table} {where}", args).fetchone()[0]
    rows = db.execute(f"SELECT * FROM {table} {where} {order} LIMIT ? OFFSET ?", (*args, limit, offset))
    return rows.fetchall(), total


def _search_rows(search: Search) -> list[Statement]:
    """The search, which faces it listed, and one more match on its key's day."""
    marks = ", ".join("?" * len(SEARCH_COLUMNS))
    insert = f"INSERT INTO searches ({', '.join(SEARCH_COLUMNS)}) VALUES ({marks})"
    link = "INSERT INTO search_faces (search_id, person_id, face_id) VALUES (?, ?, ?)"
    usage = (
        "INSERT INTO key_usage (key_id, day, searches) VALUES (?, ?, 1)"
        " ON CONFLICT (key_id, day) DO UPDATE SET searches = searches + 1"
    )
    return [
        (insert, search_values(search)),
        *[(link, (search["id"], p, f)) for p, f in listed_faces(search)],
        (usage, (search["key_id"], usage_day(search["created_at"]))),
    ]


def _get_search(db: sqlite3.Connection, search_id: str) -> Search | None:
    row = db.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
    if row is None:
        return None
    search = search_record(dict(row))
    feedback = db.execute(
        "SELECT id, person_id, correct, comment, created_at, key_id FROM feedback"
        " WHERE search_id = ? ORDER BY id",
        (search_id,),
    )
    search["feedback"] = [{**dict(f), "correct": bool(f["correct"])} for f in feedback]
    return search


def _key_usage(db: sqlite3.Connection, key_id: str, day: int) -> tuple[int, int]:
    sql = "SELECT searches FROM key_usage WHERE key_id = ? AND day = ?"
    row = db.execute(sql, (key_id, day)).fetchone()
    stored = db.execute("SELECT bytes FROM key_storage WHERE key_id = ?", (key_id,)).fetchone()
    return (row[0] if row else 0), (stored[0] if stored else 0)


def _erase_person(db: sqlite3.Connection, person_id: str, face_id: int | None) -> Erased:
    one_face = face_id is not None
    where, args = (
        ("person_id = ? AND face_id = ?", (person_id, face_id))
        if one_face
        else ("person_id = ?", (person_id,))
    )
    ids = sorted({r[0] for r in db.execute(f"SELECT search_id FROM search_faces WHERE {where}", args)})
    rows = [db.execute("SELECT * FROM searches WHERE id = ?", (i,)).fetchone() for i in ids]
    rows = [r for r in rows if r is not None]
    updates = [_redaction(row, person_id, face_id) for row in rows]
    feedback = 0
    if not one_face:  # (one face: the links stay, so erasing the person later still finds its searches)
        updates.append(("DELETE FROM search_faces WHERE person_id = ?", (person_id,)))
        feedback = db.execute("SELECT COUNT(*) FROM feedback WHERE person_id = ?", (person_id,)).fetchone()[0]
        updates.append(("DELETE FROM feedback WHERE person_id = ?", (person_id,)))
    _transaction(db, updates)
    photos = set() if one_face else {sha for r in rows for sha in (r["image_sha"], r["heatmap_sha"]) if sha}
    images = {sha for sha in photos if not _image_referenced(db, sha)}
    return erased(redacted=len(rows), feedback=feedback, images=images)


def _redaction(row: sqlite3.Row, person_id: str, face_id: int | None) -> Statement:
    """A stored search without the person's name, metadata and thumbnail (with face_id: without that
    face's thumbnail link); erasing the person also takes the search's photo, which may show them."""
    result = json.dumps(redacted(json.loads(row["result"]), person_id, face_id))
    if face_id is not None:
        return "UPDATE searches SET result = ? WHERE id = ?", (result, row["id"])
    sql = "UPDATE searches SET result = ?, image_sha = '', heatmap_sha = NULL, bytes = 0 WHERE id = ?"
    return sql, (result, row["id"])


def _delete_search(db: sqlite3.Connection, search_id: str) -> Erased:
    row = db.execute("SELECT image_sha, heatmap_sha FROM searches WHERE id = ?", (search_id,)).fetchone()
    if row is None:
        return erased()
    feedback = db.execute("SELECT COUNT(*) FROM feedback WHERE search_id = ?", (search_id,)).fetchone()[0]
    _transaction(db, [("DELETE FROM searches WHERE id = ?", (search_id,))])  # feedback, links: cascade
    images = {sha for sha in row if sha and not _image_referenced(db, sha)}
    return erased(deleted=1, feedback=feedback, images=images)


def _purge_searches(db: sqlite3.Connection, before: float) -> set[str]:
    rows = db.execute("SELECT image_sha, heatmap_sha FROM searches WHERE created_at < ?", (before,))
    candidates = {sha for row in rows.fetchall() for sha in row if sha}
    _transaction(
        db,
        [
            ("DELETE FROM searches WHERE created_at < ?", (before,)),
            ("DELETE FROM failures WHERE ts < ?", (before,)),
            ("DELETE FROM key_usage WHERE day < ?", (int(before // 86400) - 1,)),
        ],
    )
    return {sha for sha in candidates if not _image_referenced(db, sha)}


def _purge_photos(db: sqlite3.Connection, before: float) -> set[str]:
    where = "created_at < ? AND (image_sha != '' OR heatmap_sha IS NOT NULL)"
    rows = db.execute(f"SELECT image_sha, heatmap_sha FROM searches WHERE {where}", (before,)).fetchall()
    if not rows:
        return set()
    candidates = {sha for row in rows for sha in row if sha}
    sql = f"UPDATE searches SET image_sha = '', heatmap_sha = NULL, bytes = 0 WHERE {where}"
    _transaction(db, [(sql, (before,))])
    return {sha for sha in candidates if not _image_referenced(db, sha)}


def _image_referenced(db: sqlite3.Connection, sha: str) -> bool:
    sql = "SELECT 1 FROM searches WHERE image_sha = ? OR heatmap_sha = ? LIMIT 1"
    return db.execute(sql, (sha, sha)).fetchone() is not None
