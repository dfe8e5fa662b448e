"""The SQLite store (`sqlite:///path`): WAL mode, one connection, owned by one dedicated thread.

Why a one-thread executor rather than aiosqlite: every method below is one plain synchronous function that
runs whole on that thread, so a multi-statement transaction (a search and its persons, a redaction) can
never interleave with another coroutine's statements on the shared connection, and it costs one hop off
the event loop per method instead of one per statement. Calls queue in order on that thread; SQLite has
one writer at a time anyway. The event loop only ever awaits.
"""

import asyncio
import errno
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from . import keys
from .base import Failure, Feedback, Search, Store

Statement = tuple[str, tuple]
FAILURE_COLUMNS = ("ts", "request_id", "kind", "method", "path", "status", "code", "reason", "ms", "key_id")


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

    async def create_key(self, name: str, role: str) -> tuple[str, str]:
        key = keys.new_key(role)
        sql = "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)"
        await self._run(_transaction, [(sql, (key.key_id, name, role, key.hash, time.time()))])
        return key.key_id, key.token

    async def check_key(self, token: str) -> keys.ApiKey | None:
        key_id, secret = keys.split_token(token)
        row = await self._run(_one, "SELECT role, hash FROM api_keys WHERE id = ?", (key_id,))
        if keys.secret_matches(secret, row["hash"] if row else None):
            return keys.ApiKey(key_id, row["role"])
        return None

    async def count_keys(self, role: str) -> int:
        return (await self._run(_one, "SELECT COUNT(*) FROM api_keys WHERE role = ?", (role,)))[0]

    async def add_search(self, search: Search) -> None:
        await self._run(_transaction, _search_rows(search))

    async def get_search(self, search_id: str) -> Search | None:
        return await self._run(_get_search, search_id)

    async def list_searches(self, key_id: str | None, offset: int, limit: int) -> tuple[list[Search], int]:
        where, args = ("WHERE key_id = ?", (key_id,)) if key_id else ("", ())
        order = "ORDER BY created_at DESC, id"
        rows, total = await self._run(_page, "searches", where, args, order, offset, limit)
        return [_search(r) for r in rows], total

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

    async def redact_person(self, person_id: str, face_id: int | None = None) -> int:
        return await self._run(_redact_person, person_id, face_id)

    async def purge_searches(self, before: float) -> set[str]:
        return await self._run(_purge_searches, before)

    async def image_referenced(self, sha: str) -> bool:
        return await self._run(_image_referenced, sha)

    async def referenced_images(self) -> set[str]:
        rows = await self._run(_all, "SELECT image_sha, heatmap_sha FROM searches", ())
        return {sha for row in rows for sha in row if sha}

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
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(resources.files(__package__).joinpath("schema.sql").read_text())
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


def _page(db, table: str, where: str, args: tuple, order: str, offset: int, limit: int):
    """One page of a table and the total, read together (`table`, `where` and `order` are ours, not input)."""
    total = db.execute(f"SELECT COUNT(*) FROM {table} {where}", args).fetchone()[0]
    rows = db.execute(f"SELECT * FROM {table} {where} {order} LIMIT ? OFFSET ?", (*args, limit, offset))
    return rows.fetchall(), total


def _search_rows(search: Search) -> list[Statement]:
    columns = ("id", "key_id", "created_at", "image_sha", "image_type", "heatmap_sha", "k", "cached")
    values = (*(search[c] for c in columns[:-1]), int(search["cached"]), json.dumps(search["result"]))
    insert = f"INSERT INTO searches ({', '.join(columns)}, result) VALUES ({', '.join('?' * 9)})"
    persons = {m["person_id"] for m in search["result"]["matches"]}
    link = "INSERT INTO search_persons (search_id, person_id) VALUES (?, ?)"
    return [(insert, values), *[(link, (search["id"], p)) for p in persons]]


def _search(row: sqlite3.Row) -> Search:
    out = dict(row)
    out["result"] = json.loads(out["result"])
    out["cached"] = bool(out["cached"])
    return out


def _get_search(db: sqlite3.Connection, search_id: str) -> Search | None:
    row = db.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
    if row is None:
        return None
    search = _search(row)
    feedback = db.execute(
        "SELECT id, person_id, correct, comment, created_at, key_id FROM feedback"
        " WHERE search_id = ? ORDER BY id",
        (search_id,),
    )
    search["feedback"] = [{**dict(f), "correct": bool(f["correct"])} for f in feedback]
    return search


def _redact_person(db: sqlite3.Connection, person_id: str, face_id: int | None) -> int:
    ids = [r[0] for r in db.execute("SELECT search_id FROM search_persons WHERE person_id = ?", (person_id,))]
    updates: list[Statement] = []
    for search_id in ids:
        row = db.execute("SELECT result FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            continue
        result = json.loads(row[0])
        for match in result["matches"]:
            if match["person_id"] != person_id:
                continue
            if face_id is None:
                match.update(name=None, metadata={}, thumbnail_url=None, deleted=True)
            elif match["face_id"] == face_id:
                match["thumbnail_url"] = None
        updates.append(("UPDATE searches SET result = ? WHERE id = ?", (json.dumps(result), search_id)))
    if face_id is None:
        updates.append(("DELETE FROM search_persons WHERE person_id = ?", (person_id,)))
    if updates:
        _transaction(db, updates)
    return len(ids)


def _purge_searches(db: sqlite3.Connection, before: float) -> set[str]:
    rows = db.execute("SELECT image_sha, heatmap_sha FROM searches WHERE created_at < ?", (before,))
    candidates = {sha for row in rows.fetchall() for sha in row if sha}
    _transaction(
        db,
        [
            ("DELETE FROM searches WHERE created_at < ?", (before,)),
            ("DELETE FROM failures WHERE ts < ?", (before,)),
        ],
    )
    return {sha for sha in candidates if not _image_referenced(db, sha)}


def _image_referenced(db: sqlite3.Connection, sha: str) -> bool:
    sql = "SELECT 1 FROM searches WHERE image_sha = ? OR heatmap_sha = ? LIMIT 1"
    return db.execute(sql, (sha, sha)).fetchone() is not None
