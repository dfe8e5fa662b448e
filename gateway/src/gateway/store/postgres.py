"""The PostgreSQL store (`postgresql://user:password@host:port/database`): psycopg 3's asyncio driver over
a small connection pool, so several gateways can share one database (keys, searches, feedback, quotas).

Every method holds one pooled connection for one transaction (committed when it returns, rolled back when
it raises); nothing blocks the event loop: the driver and the pool are asyncio-native and the schema
migrations run in a child process at `open()` (migrate.py), awaited on a worker thread. A
read-modify-write (redacting stored results) locks the rows it rewrites (`FOR UPDATE`), so two gateways
erasing at once cannot lose each other's redactions.

Erasure (`compact()`): PostgreSQL has no secure_delete. After a deletion it runs `VACUUM (INDEX_CLEANUP
ON)` on the tables an erasure touches: the dead row versions and their index entries are removed and
their space is handed back for reuse, so no query, replica or `pg_dump` can return them, and a later
write overwrites them. It does NOT zero the freed bytes in the data files at once, and it does not touch
the write-ahead log (kept until the next checkpoints recycle it), WAL archives or base backups (PITR),
which keep what they hold for their own retention: bound those, and put the data directory and backups on
encrypted storage. `VACUUM FULL` would rewrite the files, but it locks the tables against every gateway
for as long as it runs, so it is an operator's decision (docs/operations.md), not a side effect of an
erasure.
"""

import asyncio
import contextlib
import errno
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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

POOL_MIN, POOL_MAX = 1, 10  # connections per gateway process; PostgreSQL's default max is 100
WAIT_S = 10.0  # longest wait for a pooled connection
ERASED_TABLES = "searches, search_faces, feedback"
Connection = psycopg.AsyncConnection


class PostgresStore(Store):
    def __init__(self, url: str):
        self.url = url
        self._pool: AsyncConnectionPool | None = None

    async def open(self) -> None:
        """Migrate if the database is behind (in a child process, see migrate.py), then fill the pool; an
        unreachable database is a ConnectionError that names it without its password."""
        try:
            if await self._revision() != migrate.HEAD:
                with _full_disk():
                    await asyncio.to_thread(migrate.upgrade_in_child, self.url)
            self._pool = await self._connect()
        except (ConnectionError, psycopg.OperationalError, PoolTimeout) as err:
            where = urlsplit(self.url)
            name = f"{where.hostname}:{where.port or 5432}{where.path}"
            raise ConnectionError(f"cannot open the PostgreSQL database {name}: {err}") from err

    async def _revision(self) -> str | None:
        """The schema revision, on a connection of its own: a server that refuses says so at once."""
        async with await psycopg.AsyncConnection.connect(self.url, connect_timeout=WAIT_S) as db:
            try:
                row = await (await db.execute("SELECT version_num FROM alembic_version")).fetchone()
            except psycopg.errors.UndefinedTable:  # a new database
                return None
        return row[0] if row else None

    async def _connect(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            self.url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            timeout=WAIT_S,
            kwargs={"row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,  # a restarted server's dead connections are replaced
            open=False,
            name="gateway",
        )
        await pool.open(wait=True, timeout=WAIT_S)
        return pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside one transaction; a full disk comes out as OSError(ENOSPC)."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        with _full_disk():
            async with self._pool.connection() as connection:
                yield connection

    async def _one(self, sql: str, args: tuple = ()) -> dict | None:
        async with self._transaction() as db:
            return await (await db.execute(sql, args)).fetchone()

    async def _all(self, sql: str, args: tuple = ()) -> list[dict]:
        async with self._transaction() as db:
            return await (await db.execute(sql, args)).fetchall()

    async def writable(self) -> bool:
        sql = "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro"
        try:
            row = await self._one(sql)
        except (psycopg.Error, PoolTimeout, OSError):
            return False
        return not row["standby"] and row["ro"] == "off"

    async def compact(self) -> bool:
        """VACUUM of the erased tables (see the module docstring for what that does and does not do)."""
        async with self._transaction() as db:
            await db.set_autocommit(True)  # VACUUM cannot run inside a transaction
            try:
                await db.execute(f"VACUUM (INDEX_CLEANUP ON) {ERASED_TABLES}")
            finally:
                await db.set_autocommit(False)  # the pool hands it out again for transactions
        return True

    # -- API keys ------------------------------------------------------------------------------------------
    async def create_key(self, name: str, role: str, expires_at: float | None = None) -> tuple[str, str]:
        key = keys.new_key(role)
        sql = (
            "INSERT INTO api_keys (id, name, role, hash, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        )
        async with self._transaction() as db:
            await db.execute(sql, (key.key_id, name, role, key.hash, time.time(), expires_at))
        return key.key_id, key.token

    async def check_key(self, token: str) -> keys.ApiKey | None:
        key_id, secret = keys.split_token(token)
        sql = "SELECT role, hash, expires_at, revoked_at, last_used_at FROM api_keys WHERE id = %s"
        row = await self._one(sql, (key_id,))
        if not keys.secret_matches(secret, row["hash"] if row else None):
            return None
        now = time.time()
        if not key_usable(row, now):
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY_S:
            await self._touch_key(key_id, now)
        return keys.ApiKey(key_id, row["role"])

    async def _touch_key(self, key_id: str, now: float) -> None:
        """Best effort and brief: a locked row or a full disk must neither refuse nor hold up a valid key."""
        with contextlib.suppress(psycopg.Error, PoolTimeout, OSError):
            async with self._transaction() as db:
                await db.execute("SET LOCAL lock_timeout = '200ms'")
                await db.execute("UPDATE api_keys SET last_used_at = %s WHERE id = %s", (now, key_id))

    async def count_keys(self, role: str) -> int:
        return (await self._one("SELECT COUNT(*) AS n FROM api_keys WHERE role = %s", (role,)))["n"]

    async def list_keys(self) -> list[KeyInfo]:
        rows = await self._all(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC")
        return [key_info(r) for r in rows]

    async def revoke_key(self, key_id: str) -> KeyInfo | None:
        sql = (
            f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE id = %s RETURNING {KEY_COLUMNS}"
        )
        row = await self._one(sql, (time.time(), key_id))
        return None if row is None else key_info(row)

    # -- searches and feedback -----------------------------------------------------------------------------
    async def add_search(self, search: Search) -> None:
        """The search, which faces it listed, and one more match on its key's day: one transaction."""
        marks = ", ".join(["%s"] * len(SEARCH_COLUMNS))
        usage = (
            "INSERT INTO key_usage (key_id, day, searches) VALUES (%s, %s, 1)"
            " ON CONFLICT (key_id, day) DO UPDATE SET searches = key_usage.searches + 1"
        )
        links = [(search["id"], p, f) for p, f in listed_faces(search)]
        async with self._transaction() as db:
            sql = f"INSERT INTO searches ({', '.join(SEARCH_COLUMNS)}) VALUES ({marks})"
            await db.execute(sql, search_values(search))
            async with db.cursor() as cursor:
                link = "INSERT INTO search_faces (search_id, person_id, face_id) VALUES (%s, %s, %s)"
                await cursor.executemany(link, links)
            await db.execute(usage, (search["key_id"], usage_day(search["created_at"])))

    async def get_search(self, search_id: str) -> Search | None:
        async with self._transaction() as db:
            row = await (await db.execute("SELECT * FROM searches WHERE id = %s", (search_id,))).fetchone()
            if row is None:
                return None
            sql = (
                "SELECT id, person_id, correct, comment, created_at, key_id FROM feedback"
                " WHERE search_id = %s ORDER BY id"
            )
            feedback = await (await db.execute(sql, (search_id,))).fetchall()
        search = search_record(row)
        search["feedback"] = [{**f, "correct": bool(f["correct"])} for f in feedback]
        return search

    async def list_searches(self, key_id: str | None, offset: int, limit: int) -> tuple[list[Search], int]:
        where, args = ("WHERE key_id = %s", (key_id,)) if key_id else ("", ())
        rows, total = await self._page("searches", where, args, "ORDER BY created_at DESC, id", offset, limit)
        return [search_record(r) for r in rows], total

    async def _page(self, table, where, args, order, offset, limit) -> tuple[list[dict], int]:
        """One page and the total (`table`, `where` and `order` are ours, never input)."""
        async with self._transaction() as db:
            total = await (await db.execute(f"SELECT COUNT(*) AS n FROM {table} {where}", args)).fetchone()
            sql = f"SELECT * FROM {table} {where} {order} LIMIT %s OFFSET %s"
            rows = await (await db.execute(sql, (*args, limit, offset))).fetchall()
        return rows, total["n"]

    async def add_feedback(
        self, search_id: str, key_id: str, person_id: str, correct: bool, comment: str
    ) -> Feedback:
        now = time.time()
        sql = (
            "INSERT INTO feedback (search_id, key_id, person_id, correct, comment, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
        )
        row = await self._one(sql, (search_id, key_id, person_id, int(correct), comment, now))
        return {
            "id": row["id"],
            "search_id": search_id,
            "person_id": person_id,
            "correct": correct,
            "comment": comment,
            "created_at": now,
            "key_id": key_id,
        }

    async def searches_showing(self, key_id: str, person_id: str, face_id: int) -> list[Search]:
        sql = (
            "SELECT s.* FROM search_faces f JOIN searches s ON s.id = f.search_id WHERE f.person_id = %s"
            " AND f.face_id = %s AND s.key_id = %s ORDER BY s.created_at DESC LIMIT 5"
        )
        return [search_record(r) for r in await self._all(sql, (person_id, face_id, key_id))]

    async def key_usage(self, key_id: str, day: int) -> tuple[int, int]:
        sql = (
            "SELECT (SELECT searches FROM key_usage WHERE key_id = %s AND day = %s) AS searches,"
            " (SELECT bytes FROM key_storage WHERE key_id = %s) AS stored"
        )
        row = await self._one(sql, (key_id, day, key_id))
        return row["searches"] or 0, int(row["stored"] or 0)

    async def erase_person(self, person_id: str, face_id: int | None = None) -> Erased:
        one_face = face_id is not None
        where, args = (
            ("person_id = %s AND face_id = %s", (person_id, face_id))
            if one_face
            else (
                "person_id = %s",
                (person_id,),
            )
        )
        async with self._transaction() as db:
            links = f"SELECT search_id FROM search_faces WHERE {where}"
            sql = f"SELECT * FROM searches WHERE id IN ({links}) ORDER BY id FOR UPDATE"
            rows = await (await db.execute(sql, args)).fetchall()
            for row in rows:
                await db.execute(*_redaction(row, person_id, face_id))
            feedback = 0
            if not one_face:  # (one face: the links stay, so erasing the person later still finds them)
                await db.execute("DELETE FROM search_faces WHERE person_id = %s", (person_id,))
                gone = await db.execute("DELETE FROM feedback WHERE person_id = %s", (person_id,))
                feedback = gone.rowcount
            photos = set() if one_face else {s for r in rows for s in (r["image_sha"], r["heatmap_sha"]) if s}
            images = await _unreferenced(db, photos)
        return erased(redacted=len(rows), feedback=feedback, images=images)

    async def delete_search(self, search_id: str) -> Erased:
        async with self._transaction() as db:
            sql = "SELECT COUNT(*) AS n FROM feedback WHERE search_id = %s"
            feedback = (await (await db.execute(sql, (search_id,))).fetchone())["n"]
            sql = "DELETE FROM searches WHERE id = %s RETURNING image_sha, heatmap_sha"  # the rest: cascade
            row = await (await db.execute(sql, (search_id,))).fetchone()
            if row is None:
                return erased()
            images = await _unreferenced(db, {row["image_sha"], row["heatmap_sha"]} - {"", None})
        return erased(deleted=1, feedback=feedback, images=images)

    async def purge_searches(self, before: float) -> set[str]:
        async with self._transaction() as db:
            sql = "DELETE FROM searches WHERE created_at < %s RETURNING image_sha, heatmap_sha"
            rows = await (await db.execute(sql, (before,))).fetchall()
            await db.execute("DELETE FROM failures WHERE ts < %s", (before,))
            await db.execute("DELETE FROM key_usage WHERE day < %s", (usage_day(before) - 1,))
            return await _unreferenced(db, {s for r in rows for s in (r["image_sha"], r["heatmap_sha"]) if s})

    async def purge_photos(self, before: float) -> set[str]:
        where = "created_at < %s AND (image_sha != '' OR heatmap_sha IS NOT NULL)"
        async with self._transaction() as db:
            sql = f"SELECT id, image_sha, heatmap_sha FROM searches WHERE {where} FOR UPDATE"
            rows = await (await db.execute(sql, (before,))).fetchall()
            if not rows:
                return set()
            sql = "UPDATE searches SET image_sha = '', heatmap_sha = NULL, bytes = 0 WHERE id = ANY(%s)"
            await db.execute(sql, ([r["id"] for r in rows],))
            return await _unreferenced(db, {s for r in rows for s in (r["image_sha"], r["heatmap_sha"]) if s})

    async def image_referenced(self, sha: str) -> bool:
        async with self._transaction() as db:
            return not await _unreferenced(db, {sha})

    async def referenced_images(self) -> set[str]:
        rows = await self._all("SELECT image_sha, heatmap_sha FROM searches")
        return {sha for row in rows for sha in row.values() if sha}

    # -- failure log ---------------------------------------------------------------------------------------
    async def add_failure(self, entry: Failure) -> None:
        columns, marks = ", ".join(FAILURE_COLUMNS), ", ".join(["%s"] * len(FAILURE_COLUMNS))
        async with self._transaction() as db:
            sql = f"INSERT INTO failures ({columns}) VALUES ({marks})"
            await db.execute(sql, tuple(entry.get(c) for c in FAILURE_COLUMNS))

    async def list_failures(
        self, offset: int, limit: int, request_id: str | None = None
    ) -> tuple[list[Failure], int]:
        where, args = ("WHERE request_id = %s", (request_id,)) if request_id else ("", ())
        return await self._page("failures", where, args, "ORDER BY id DESC", offset, limit)


@contextlib.contextmanager
def _full_disk():
    """PostgreSQL's disk_full (SQLSTATE 53100) as the OSError(ENOSPC) every store raises for it."""
    try:
        yield
    except psycopg.errors.DiskFull as err:
        raise OSError(errno.ENOSPC, f"the database is full: {err}") from err


def _redaction(row: dict, person_id: str, face_id: int | None) -> tuple[str, tuple]:
    """A stored search without the person's name, metadata and thumbnail (with face_id: without that
    face's thumbnail link); erasing the person also takes the search's photo, which may show them."""
    result = json.dumps(redacted(json.loads(row["result"]), person_id, face_id))
    if face_id is not None:
        return "UPDATE searches SET result = %s WHERE id = %s", (result, row["id"])
    sql = "UPDATE searches SET result = %s, image_sha = '', heatmap_sha = NULL, bytes = 0 WHERE id = %s"
    return sql, (result, row["id"])


async def _unreferenced(db: Connection, shas: set[str]) -> set[str]:
    """Those of `shas` that no search refers to any more (in this transaction's view)."""
    if not shas:
        return set()
    sql = (
        "SELECT image_sha AS sha FROM searches WHERE image_sha = ANY(%s)"
        " UNION SELECT heatmap_sha FROM searches WHERE heatmap_sha = ANY(%s)"
    )
    used = {r["sha"] for r in await (await db.execute(sql, (list(shas), list(shas)))).fetchall()}
    return shas - used
