"""The gallery's truth: persons, faces, their vectors and the `changes` log in one SQLite database (WAL).

All SQL of the gallery is here. Writes go through `transaction()` (BEGIN IMMEDIATE: writers of every
process serialise on SQLite's lock, readers never wait). Every added or removed face appends a row to
`changes`, which is what other processes replay into their search indexes (`index.py`).

Erasure: `secure_delete` is on, so SQLite overwrites what a deletion removes (rows, freed pages) with
zeros, and `purge()` after a deletion copies the WAL into the database and truncates it, so no old
page with a deleted name or vector stays in either file. A deleted person's id (a random token, nothing
personal) stays in `erased`, so that a repeated DELETE is answered as done rather than as unknown.
The database file is created readable by its owner only (its WAL and shared-memory files inherit that).
"""

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .records import NewFace, normalised

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    token TEXT NOT NULL UNIQUE,
    box TEXT NOT NULL,
    detection_score REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
CREATE TABLE IF NOT EXISTS vectors (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (face_id, space)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    face_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE TABLE IF NOT EXISTS erased (
    person_id TEXT PRIMARY KEY,
    erased_at REAL NOT NULL
);
"""
DATABASE_FILE = "gallery.sqlite3"
FACE_COLUMNS = "id, box, detection_score, created_at"
CHECKPOINT_ATTEMPTS = 40  # x 50 ms: a reader in another worker holds an old snapshot only briefly


class MetadataStore:
    """One SQLite database, one connection per thread (sqlite3 connections are not shared safely)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        if not self.path.exists():  # owner-only from the first byte; the -wal and -shm files follow it
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.connect().executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            _enable_wal(db)
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free space
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def transaction(self) -> "Transaction":
        return Transaction(self.connect())

    # -- writes ----------------------------------------------------------------------------------------
    def add_person(self, person_id: str, name: str, metadata: dict, faces: list[NewFace], tokens: list[str]):
        """A person and its faces (their files written already, named by `tokens`), in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO persons (id, name, metadata, created_at) VALUES (?, ?, ?, ?)",
                (person_id, name, json.dumps(metadata), time.time()),
            )
            _insert_faces(db, person_id, faces, tokens)

    def add_faces(self, person_id: str, faces: list[NewFace], tokens: list[str]) -> bool:
        """Add faces to a person; False (nothing written) if there is no such person."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is None:
                return False
            _insert_faces(db, person_id, faces, tokens)
        return True

    def delete_person(self, person_id: str) -> dict | None:
        """Remove a person, its faces and their vectors (one `del` change each) and keep its id in
        `erased`: {"tokens", "faces", "vectors", "already_deleted"}, or None if it never existed."""
        with self.transaction() as db:
            rows = db.execute("SELECT id, token FROM faces WHERE person_id = ?", (person_id,)).fetchall()
            vectors = _vector_count(db, [r[0] for r in rows])
            if not db.execute("DELETE FROM persons WHERE id = ?", (person_id,)).rowcount:
                known = db.execute("SELECT 1 FROM erased WHERE person_id = ?", (person_id,)).fetchone()
                return _erased([], 0, already=True) if known else None
            db.executemany("INSERT INTO changes (face_id, op) VALUES (?, 'del')", [(r[0],) for r in rows])
            db.execute(
                "INSERT OR REPLACE INTO erased (person_id, erased_at) VALUES (?, ?)", (person_id, time.time())
            )
        return _erased([r[1] for r in rows], vectors)

    def delete_face(self, person_id: str, face_id: int) -> dict | None:
        """Remove one face of a person and its vectors: {"tokens", "faces", "vectors"}, or None if the
        person has no such face."""
        with self.transaction() as db:
            token = self._token(db, person_id, face_id)
            if token is None:
                return None
            vectors = _vector_count(db, [face_id])
            db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
            db.execute("INSERT INTO changes (face_id, op) VALUES (?, 'del')", (face_id,))
        return _erased([token], vectors)

    def purge(self) -> dict:
        """After an erasure: copy the WAL into the database and truncate it to zero bytes, so the page
        images a deletion replaced are gone from the WAL too. Retried while another process reads an older
        snapshot; {"wal_truncated": whether it completed}."""
        db = self.connect()
        for _ in range(CHECKPOINT_ATTEMPTS):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return {"wal_truncated": True}
            time.sleep(0.05)
        return {"wal_truncated": False}

    def replace_vectors(self, space: str, vectors: dict[int, np.ndarray]) -> None:
        """Store (re-embedded) vectors of existing faces; an `add` change each lets every index pick it up."""
        with self.transaction() as db:
            for face_id, vector in vectors.items():
                db.execute(
                    "INSERT OR REPLACE INTO vectors (face_id, space, vector) VALUES (?, ?, ?)",
                    (face_id, space, normalised(vector).tobytes()),
                )
                db.execute("INSERT INTO changes (face_id, op) VALUES (?, 'add')", (face_id,))

    # -- reads for the search indexes ----------------------------------------------------------------
    def latest_change(self) -> int:
        """The `changes` log's last sequence number: the gallery's version."""
        return self.connect().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def changes_since(self, seq: int) -> list[tuple[int, int, str, str | None]]:
        """(seq, face id, op, its person or None if the face is gone since) after `seq`, oldest first."""
        return (
            self.connect()
            .execute(
                "SELECT c.seq, c.face_id, c.op, f.person_id FROM changes c "
                "LEFT JOIN faces f ON f.id = c.face_id WHERE c.seq > ? ORDER BY c.seq",
                (seq,),
            )
            .fetchall()
        )

    def face_owners(self) -> dict[int, str]:
        return dict(self.connect().execute("SELECT id, person_id FROM faces").fetchall())

    def vectors(self, space: str, face_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(face ids (n,), vectors (n, D)) stored in `space`, of every face or of `face_ids`."""
        query, args = "SELECT face_id, vector FROM vectors WHERE space = ?", [space]
        if face_ids is not None:
            query += f" AND face_id IN ({','.join('?' * len(face_ids))})"
            args += face_ids
        rows = self.connect().execute(query, args).fetchall()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, 0), np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def faces_without(self, space: str) -> list[tuple[int, str]]:
        """(face id, token) of faces that have no vector in `space`."""
        rows = self.connect().execute(
            "SELECT id, token FROM faces WHERE id NOT IN (SELECT face_id FROM vectors WHERE space = ?)",
            (space,),
        )
        return [(r[0], r[1]) for r in rows]

    # -- reads for the API ---------------------------------------------------------------------------
    def tokens(self) -> set[str]:
        return {r[0] for r in self.connect().execute("SELECT token FROM faces")}

    def token(self, person_id: str, face_id: int) -> str | None:
        return self._token(self.connect(), person_id, face_id)

    @staticmethod
    def _token(db: sqlite3.Connection, person_id: str, face_id: int) -> str | None:
        row = db.execute(
            "SELECT token FROM faces WHERE id = ? AND person_id = ?", (face_id, person_id)
        ).fetchone()
        return None if row is None else row[0]

    def person(self, person_id: str) -> dict | None:
        db = self.connect()
        row = db.execute("SELECT * FROM persons WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            return None
        faces = db.execute(
            f"SELECT {FACE_COLUMNS} FROM faces WHERE person_id = ? ORDER BY id", (person_id,)
        ).fetchall()
        return _person(row, faces)

    def persons(self, offset: int, limit: int) -> tuple[list[dict], int]:
        """A page of persons, oldest first, with their faces; and how many there are in all."""
        db = self.connect()
        total = db.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        rows = db.execute(
            "SELECT * FROM persons ORDER BY created_at, id LIMIT ? OFFSET ?", (limit, offset)
        ).fetchall()
        faces: dict[str, list] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            for f in db.execute(
                f"SELECT person_id, {FACE_COLUMNS} FROM faces WHERE person_id IN ({marks}) ORDER BY id",
                [r["id"] for r in rows],
            ):
                faces.setdefault(f["person_id"], []).append(f)
        return [_person(r, faces.get(r["id"], [])) for r in rows], total

    def owners(self, face_ids: list[int]) -> dict[int, tuple[str, str, dict]]:
        """{face id: (person id, name, metadata)} of those of `face_ids` that still exist."""
        if not face_ids:
            return {}
        marks = ",".join("?" * len(face_ids))
        rows = self.connect().execute(
            "SELECT f.id, p.id, p.name, p.metadata FROM faces f JOIN persons p ON p.id = f.person_id "
            f"WHERE f.id IN ({marks})",
            face_ids,
        )
        return {r[0]: (r[1], r[2], json.loads(r[3])) for r in rows}

    def vector_counts(self) -> dict[str, int]:
        rows = self.connect().execute("SELECT space, COUNT(*) FROM vectors GROUP BY space")
        return {r[0]: r[1] for r in rows}

    def dump(self, batch: int = 200) -> Iterator[list[dict]]:
        """Every person, oldest first, in lists of `batch`: its row, and each face's row (token included)
        with its vectors {space: float32 bytes}; erased ids are `erased()`. For `migrate.py`."""
        db, offset = self.connect(), 0
        while rows := self.persons(offset, batch)[0]:
            offset += len(rows)
            marks = ",".join("?" * len(rows))
            ids = [r["id"] for r in rows]
            faces = db.execute(f"SELECT id, token FROM faces WHERE person_id IN ({marks})", ids).fetchall()
            tokens = {f[0]: f[1] for f in faces}
            vectors: dict[int, dict[str, bytes]] = {}
            marks = ",".join("?" * len(faces))
            for f, space, v in db.execute(
                f"SELECT face_id, space, vector FROM vectors WHERE face_id IN ({marks})", list(tokens)
            ):
                vectors.setdefault(f, {})[space] = v
            for person in rows:
                for f in person["faces"]:
                    f["token"], f["vectors"] = tokens[f["id"]], vectors.get(f["id"], {})
            yield rows

    def space_dims(self) -> dict[str, int]:
        """{space: dimension} of every space with vectors here (not only the served model's)."""
        rows = self.connect().execute("SELECT space, LENGTH(vector) / 4 FROM vectors GROUP BY space")
        return {r[0]: int(r[1]) for r in rows}

    def erased(self) -> list[tuple[str, float]]:
        return [(r[0], r[1]) for r in self.connect().execute("SELECT person_id, erased_at FROM erased")]

    def counts(self) -> dict[str, int]:
        db = self.connect()
        return {
            "persons": db.execute("SELECT COUNT(*) FROM persons").fetchone()[0],
            "faces": db.execute("SELECT COUNT(*) FROM faces").fetchone()[0],
            "version": self.latest_change(),
        }


class Transaction:
    """`with store.transaction() as db:` - BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _insert_faces(db: sqlite3.Connection, person_id: str, faces: list[NewFace], tokens: list[str]) -> None:
    """The faces' rows, their vectors and one `add` change each."""
    now = time.time()
    for face, token in zip(faces, tokens, strict=True):
        face_id = db.execute(
            "INSERT INTO faces (person_id, token, box, detection_score, created_at) VALUES (?, ?, ?, ?, ?)",
            (person_id, token, json.dumps(face.box), face.detection_score, now),
        ).lastrowid
        db.executemany(
            "INSERT INTO vectors (face_id, space, vector) VALUES (?, ?, ?)",
            [(face_id, space, normalised(v).tobytes()) for space, v in face.vectors.items()],
        )
        db.execute("INSERT INTO changes (face_id, op) VALUES (?, 'add')", (face_id,))


def _vector_count(db: sqlite3.Connection, face_ids: list[int]) -> int:
    if not face_ids:
        return 0
    marks = ",".join("?" * len(face_ids))
    return db.execute(f"SELECT COUNT(*) FROM vectors WHERE face_id IN ({marks})", face_ids).fetchone()[0]


def _erased(tokens: list[str], vectors: int, already: bool = False) -> dict:
    return {"tokens": tokens, "faces": len(tokens), "vectors": vectors, "already_deleted": already}


def _person(row: sqlite3.Row, faces: list) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "metadata": json.loads(row["metadata"]),
        "created_at": row["created_at"],
        "faces": [
            {
                "id": f["id"],
                "box": json.loads(f["box"]),
                "detection_score": f["detection_score"],
                "created_at": f["created_at"],
            }
            for f in faces
        ],
    }


def _enable_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL. When two gunicorn workers create a new gallery at once, SQLite answers "database is
    locked" here without waiting for its busy timeout, so retry."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
