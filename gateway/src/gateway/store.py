"""The one data-access module: API keys, searches, feedback and the failure log in SQL.

SQLite in WAL mode by default (`sqlite:///path`); every write is one transaction, so a crash leaves either
the whole row set or none. The SQL is plain enough that a PostgreSQL implementation of this same class
can replace it for multi-instance deployments; nothing else in the gateway touches the database.
"""

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from pathlib import Path

ROLES = ("search", "admin")
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at REAL NOT NULL, image_sha TEXT NOT NULL,
    image_type TEXT NOT NULL, heatmap_sha TEXT, k INTEGER NOT NULL, cached INTEGER NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_by_key ON searches (key_id, created_at);
CREATE INDEX IF NOT EXISTS searches_by_time ON searches (created_at);
CREATE TABLE IF NOT EXISTS search_persons (
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE, person_id TEXT NOT NULL,
    PRIMARY KEY (search_id, person_id)
);
CREATE INDEX IF NOT EXISTS search_persons_by_person ON search_persons (person_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL, person_id TEXT NOT NULL, correct INTEGER NOT NULL, comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL, kind TEXT NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, code TEXT NOT NULL,
    reason TEXT NOT NULL, ms REAL NOT NULL, key_id TEXT
);
CREATE INDEX IF NOT EXISTS failures_by_time ON failures (ts);
"""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    def __init__(self, url: str):
        scheme, sep, path = url.partition("://")
        if scheme != "sqlite" or not sep:
            raise ValueError(f"unsupported database URL {url!r}: this store implements sqlite:///path")
        path = path.removeprefix("/")  # sqlite:///relative/x.db and sqlite:////absolute/x.db
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def _tx(self, statements: list[tuple[str, tuple]]) -> list[sqlite3.Cursor]:
        """Several statements as one transaction: all of them or none."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            out = [self.db.execute(sql, args) for sql, args in statements]
            self.db.execute("COMMIT")
            return out
        except BaseException:
            if self.db.in_transaction:  # SQLite has already rolled back after "database or disk is full"
                self.db.execute("ROLLBACK")
            raise

    def writable(self) -> bool:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            return False

    # -- API keys: `gw_<id>_<secret>`; only the sha256 of the secret is stored ---------------------------
    def create_key(self, name: str, role: str) -> tuple[str, str]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self._tx(
            [
                (
                    "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key_id, name, role, _hash(secret), time.time()),
                )
            ]
        )
        return key_id, f"gw_{key_id}_{secret}"

    def check_key(self, token: str) -> tuple[str, str] | None:
        """(key id, role) for a valid key; the secret is compared in constant time."""
        parts = token.split("_", 2)
        key_id, secret = (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "gw" else ("", "")
        row = self.db.execute("SELECT role, hash FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        expected = row["hash"] if row else _hash("no such key")
        if hmac.compare_digest(_hash(secret), expected) and row:
            return key_id, row["role"]
        return None

    def count_keys(self, role: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM api_keys WHERE role = ?", (role,)).fetchone()[0]

    # -- searches ----------------------------------------------------------------------------------------
    def add_search(self, search: dict) -> None:
        person_ids = {m["person_id"] for m in search["result"]["matches"]}
        self._tx(
            [
                (
                    "INSERT INTO searches (id, key_id, created_at, image_sha, image_type, heatmap_sha, k,"
                    " cached, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        search["id"],
                        search["key_id"],
                        search["created_at"],
                        search["image_sha"],
                        search["image_type"],
                        search["heatmap_sha"],
                        search["k"],
                        int(search["cached"]),
                        json.dumps(search["result"]),
                    ),
                ),
                *[
                    ("INSERT INTO search_persons (search_id, person_id) VALUES (?, ?)", (search["id"], p))
                    for p in person_ids
                ],
            ]
        )

    @staticmethod
    def _search(row: sqlite3.Row) -> dict:
        out = dict(row)
        out["result"] = json.loads(out["result"])
        out["cached"] = bool(out["cached"])
        return out

    def get_search(self, search_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            return None
        search = self._search(row)
        search["feedback"] = [
            {**dict(f), "correct": bool(f["correct"])}
            for f in self.db.execute(
                "SELECT id, person_id, correct, comment, created_at, key_id FROM feedback"
                " WHERE search_id = ? ORDER BY id",
                (search_id,),
            )
        ]
        return search

    def list_searches(self, key_id: str | None, offset: int, limit: int) -> tuple[list[dict], int]:
        """Newest first; one key's searches, or everyone's when key_id is None."""
        where, args = ("WHERE key_id = ?", (key_id,)) if key_id else ("", ())
        total = self.db.execute(f"SELECT COUNT(*) FROM searches {where}", args).fetchone()[0]
        rows = self.db.execute(
            f"SELECT * FROM searches {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        return [self._search(r) for r in rows], total

    def add_feedback(self, search_id: str, key_id: str, person_id: str, correct: bool, comment: str) -> dict:
        now = time.time()
        cursor = self._tx(
            [
                (
                    "INSERT INTO feedback (search_id, key_id, person_id, correct, comment, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (search_id, key_id, person_id, int(correct), comment, now),
                )
            ]
        )[0]
        return {
            "id": cursor.lastrowid,
            "search_id": search_id,
            "person_id": person_id,
            "correct": correct,
            "comment": comment,
            "created_at": now,
            "key_id": key_id,
        }

    def redact_person(self, person_id: str, face_id: int | None = None) -> int:
        """Stored searches keep the match (its rank and similarity) but lose the deleted person's name,
        metadata and thumbnail link; with face_id, only matches shown with that face lose the link."""
        ids = [
            r[0]
            for r in self.db.execute("SELECT search_id FROM search_persons WHERE person_id = ?", (person_id,))
        ]
        updates = []
        for search_id in ids:
            row = self.db.execute("SELECT result FROM searches WHERE id = ?", (search_id,)).fetchone()
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
            self._tx(updates)
        return len(ids)

    def purge_searches(self, before: float) -> set[str]:
        """Delete searches (and their feedback) created before `before`, and failures logged before it.
        Returns the image hashes no remaining search refers to."""
        rows = self.db.execute(
            "SELECT image_sha, heatmap_sha FROM searches WHERE created_at < ?", (before,)
        ).fetchall()
        self._tx(
            [
                ("DELETE FROM searches WHERE created_at < ?", (before,)),
                ("DELETE FROM failures WHERE ts < ?", (before,)),
            ]
        )
        candidates = {sha for row in rows for sha in row if sha}
        return {sha for sha in candidates if not self.image_referenced(sha)}

    def image_referenced(self, sha: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM searches WHERE image_sha = ? OR heatmap_sha = ? LIMIT 1", (sha, sha)
            ).fetchone()
            is not None
        )

    def referenced_images(self) -> set[str]:
        rows = self.db.execute("SELECT image_sha, heatmap_sha FROM searches").fetchall()
        return {sha for row in rows for sha in row if sha}

    # -- failure log -------------------------------------------------------------------------------------
    def add_failure(self, entry: dict) -> None:
        columns = ("ts", "request_id", "kind", "method", "path", "status", "code", "reason", "ms", "key_id")
        self._tx(
            [
                (
                    f"INSERT INTO failures ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    tuple(entry.get(c) for c in columns),
                )
            ]
        )

    def list_failures(self, offset: int, limit: int, request_id: str | None = None) -> tuple[list[dict], int]:
        where, args = ("WHERE request_id = ?", (request_id,)) if request_id else ("", ())
        total = self.db.execute(f"SELECT COUNT(*) FROM failures {where}", args).fetchone()[0]
        rows = self.db.execute(
            f"SELECT * FROM failures {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [dict(r) for r in rows], total
