"""The shared gallery's truth: persons, faces, every face's vectors per space, the aligned crops and
thumbnails, the `changes` log and Milvus's watermark, all in one PostgreSQL database.

The crops and thumbnails are `bytea` columns of the face's own row: every replica reaches them, and they
commit in the same transaction as the face, so there is no orphan file and no half-written person (a
replica killed mid-enrolment leaves an aborted transaction, nothing else).

Every write transaction first takes one advisory lock (WRITE_LOCK), so writers commit in the order of
their `changes` sequence numbers, as in SQLite: a reader that has seen change n has seen every change
before it, which is what makes a single watermark enough for replaying the log into Milvus (`milvus.py`).

Erasure: a DELETE leaves dead tuples in the table's pages; `purge()` runs VACUUM, which removes them from
the tables (and their TOAST data) and makes the space reusable, but does not overwrite the bytes, and the
write-ahead log, WAL archives, replicas and backups keep their copies until they are recycled or expire.
What VACUUM guarantees is that no query, of any replica, can read the row again; erasure from the media
needs the WAL to be recycled (a CHECKPOINT and time) and backups to age out (docs/operations.md).
"""

import secrets
import time

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..pipeline.render import png
from .records import NewFace, normalised

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    metadata JSONB NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id BIGSERIAL PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    token TEXT NOT NULL UNIQUE,
    box JSONB NOT NULL,
    detection_score DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    crop BYTEA NOT NULL,
    thumbnail BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
CREATE TABLE IF NOT EXISTS vectors (
    face_id BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (face_id, space)
);
CREATE TABLE IF NOT EXISTS changes (
    seq BIGSERIAL PRIMARY KEY,
    face_id BIGINT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE TABLE IF NOT EXISTS erased (
    person_id TEXT PRIMARY KEY,
    erased_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS gallery_state (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    gallery_id TEXT NOT NULL,
    milvus_seq BIGINT NOT NULL DEFAULT 0
);
"""
WRITE_LOCK = 0x6761_6C6C  # advisory lock keys ("gall", "sync"): writers, and replays into Milvus
SYNC_LOCK = 0x7379_6E63
FACE_COLUMNS = "id, box, detection_score, created_at"
IMAGE_COLUMNS = {"crop": "crop", "thumbnail": "thumbnail"}
VACUUMED = ("persons", "faces", "vectors", "changes")


class PgMetadataStore:
    """The SQLite `MetadataStore`'s interface on PostgreSQL, through a small connection pool per process."""

    def __init__(self, url: str, pool_size: int = 8):
        self.url = url
        self.pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=True, timeout=30
        )
        with self.pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # two replicas creating it at once
            db.execute(SCHEMA)
            db.execute(
                "INSERT INTO gallery_state (gallery_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (secrets.token_hex(4),),
            )

    def close(self) -> None:
        self.pool.close()

    def write(self):
        """`with store.write() as db:` one transaction that holds the writers' lock until it commits."""
        return _Write(self.pool)

    # -- writes ----------------------------------------------------------------------------------------
    def add_person(self, person_id: str, name: str, metadata: dict, faces: list[NewFace], tokens: list[str]):
        with self.write() as db:
            db.execute(
                "INSERT INTO persons (id, name, metadata, created_at) VALUES (%s, %s, %s, %s)",
                (person_id, name, Jsonb(metadata), time.time()),
            )
            _insert_faces(db, person_id, faces, tokens)

    def add_faces(self, person_id: str, faces: list[NewFace], tokens: list[str]) -> bool:
        """Add faces to a person; False (nothing written) if there is no such person."""
        with self.write() as db:
            if db.execute("SELECT 1 FROM persons WHERE id = %s", (person_id,)).fetchone() is None:
                return False
            _insert_faces(db, person_id, faces, tokens)
        return True

    def delete_person(self, person_id: str) -> dict | None:
        """As `MetadataStore.delete_person`; the crops and thumbnails go with the rows."""
        with self.write() as db:
            rows = db.execute("SELECT id, token FROM faces WHERE person_id = %s", (person_id,)).fetchall()
            vectors = _vector_count(db, [r[0] for r in rows])
            if not db.execute("DELETE FROM persons WHERE id = %s", (person_id,)).rowcount:
                known = db.execute("SELECT 1 FROM erased WHERE person_id = %s", (person_id,)).fetchone()
                return _erased([], 0, already=True) if known else None
            db.cursor().executemany(
                "INSERT INTO changes (face_id, op) VALUES (%s, 'del')", [(r[0],) for r in rows]
            )
            db.execute(
                "INSERT INTO erased (person_id, erased_at) VALUES (%s, %s) ON CONFLICT (person_id) "
                "DO UPDATE SET erased_at = EXCLUDED.erased_at",
                (person_id, time.time()),
            )
        return _erased([r[1] for r in rows], vectors)

    def delete_face(self, person_id: str, face_id: int) -> dict | None:
        with self.write() as db:
            token = _token(db, person_id, face_id)
            if token is None:
                return None
            vectors = _vector_count(db, [face_id])
            db.execute("DELETE FROM faces WHERE id = %s", (face_id,))
            db.execute("INSERT INTO changes (face_id, op) VALUES (%s, 'del')", (face_id,))
        return _erased([token], vectors)

    def purge(self) -> dict:
        """VACUUM the gallery's tables after an erasure (what that guarantees: the module docstring)."""
        with psycopg.connect(self.url, autocommit=True) as db:
            for table in VACUUMED:
                db.execute(f"VACUUM {table}")
        return {"wal_truncated": False, "vacuumed": True}

    def replace_vectors(self, space: str, vectors: dict[int, np.ndarray]) -> None:
        with self.write() as db:
            for face_id, vector in vectors.items():
                db.execute(
                    "INSERT INTO vectors (face_id, space, vector) VALUES (%s, %s, %s) "
                    "ON CONFLICT (face_id, space) DO UPDATE SET vector = EXCLUDED.vector",
                    (face_id, space, normalised(vector).tobytes()),
                )
                db.execute("INSERT INTO changes (face_id, op) VALUES (%s, 'add')", (face_id,))

    def copy_in(self, persons: list[dict], erased: list[tuple[str, float]] = ()) -> int:
        """Store persons as `MetadataStore.dump` gives them, each face with its `crop` and `thumbnail`
        bytes, keeping every id (thumbnail URLs and the gateway's stored searches name them) and adding
        an `add` change per face. Persons already here are skipped (a migration can be run again);
        how many were added."""
        added = 0
        with self.write() as db:
            for person in persons:
                added += _copy_person(db, person)
            db.cursor().executemany(
                "INSERT INTO erased (person_id, erased_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                list(erased),
            )
            db.execute("SELECT setval('faces_id_seq', GREATEST((SELECT COALESCE(MAX(id), 0) FROM faces), 1))")
        return added

    # -- the log and the vectors (for Milvus) -------------------------------------------------------------
    def fetch_one(self, query: str, args=()):
        with self.pool.connection() as db:
            return db.execute(query, args).fetchone()

    def fetch_all(self, query: str, args=()) -> list:
        with self.pool.connection() as db:
            return db.execute(query, args).fetchall()

    def latest_change(self) -> int:
        return self.fetch_one("SELECT COALESCE(MAX(seq), 0) FROM changes")[0]

    def gallery_id(self) -> str:
        return self.fetch_one("SELECT gallery_id FROM gallery_state")[0]

    def vectors(self, space: str, face_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(face ids (n,), vectors (n, D)) stored in `space`, of every face or of `face_ids`."""
        query, args = "SELECT face_id, vector FROM vectors WHERE space = %s", [space]
        if face_ids is not None:
            query, args = query + " AND face_id = ANY(%s)", [space, list(face_ids)]
        return _stacked(self.fetch_all(query + " ORDER BY face_id", args))

    def faces_without(self, space: str) -> list[tuple[int, str]]:
        rows = self.fetch_all(
            "SELECT id, token FROM faces f WHERE NOT EXISTS "
            "(SELECT 1 FROM vectors v WHERE v.face_id = f.id AND v.space = %s) ORDER BY id",
            (space,),
        )
        return [(r[0], r[1]) for r in rows]

    def space_dims(self) -> dict[str, int]:
        """{space: dimension} of every space with vectors here."""
        rows = self.fetch_all("SELECT space, MAX(LENGTH(vector)) / 4 FROM vectors GROUP BY space")
        return {r[0]: int(r[1]) for r in rows}

    def vector_counts(self) -> dict[str, int]:
        return dict(self.fetch_all("SELECT space, COUNT(*) FROM vectors GROUP BY space"))

    # -- reads for the API ----------------------------------------------------------------------------
    def tokens(self) -> set[str]:
        return {r[0] for r in self.fetch_all("SELECT token FROM faces")}

    def token(self, person_id: str, face_id: int) -> str | None:
        with self.pool.connection() as db:
            return _token(db, person_id, face_id)

    def image(self, token: str, kind: str) -> bytes | None:
        row = self.fetch_one(f"SELECT {IMAGE_COLUMNS[kind]} FROM faces WHERE token = %s", (token,))
        return None if row is None else bytes(row[0])

    def person(self, person_id: str) -> dict | None:
        row = self.fetch_one("SELECT id, name, metadata, created_at FROM persons WHERE id = %s", (person_id,))
        if row is None:
            return None
        faces = self.fetch_all(
            f"SELECT {FACE_COLUMNS} FROM faces WHERE person_id = %s ORDER BY id", (person_id,)
        )
        return _person(row, faces)

    def persons(self, offset: int, limit: int) -> tuple[list[dict], int]:
        total = self.fetch_one("SELECT COUNT(*) FROM persons")[0]
        rows = self.fetch_all(
            "SELECT id, name, metadata, created_at FROM persons ORDER BY created_at, id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        faces: dict[str, list] = {}
        for f in self.fetch_all(
            f"SELECT person_id, {FACE_COLUMNS} FROM faces WHERE person_id = ANY(%s) ORDER BY id",
            ([r[0] for r in rows],),
        ):
            faces.setdefault(f[0], []).append(f[1:])
        return [_person(r, faces.get(r[0], [])) for r in rows], total

    def owners(self, face_ids: list[int]) -> dict[int, tuple[str, str, dict]]:
        """{face id: (person id, name, metadata)} of those of `face_ids` that still exist."""
        rows = self.fetch_all(
            "SELECT f.id, p.id, p.name, p.metadata FROM faces f JOIN persons p ON p.id = f.person_id "
            "WHERE f.id = ANY(%s)",
            (list(face_ids),),
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def counts(self) -> dict[str, int]:
        persons, faces, version = self.fetch_one(
            "SELECT (SELECT COUNT(*) FROM persons), (SELECT COUNT(*) FROM faces), "
            "(SELECT COALESCE(MAX(seq), 0) FROM changes)"
        )
        return {"persons": persons, "faces": faces, "version": version}


class _Write:
    """A pooled connection in one transaction that first takes the writers' advisory lock."""

    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def __enter__(self) -> psycopg.Connection:
        self._conn = self.pool.connection()
        db = self._conn.__enter__()
        self._tx = db.transaction()
        self._tx.__enter__()
        db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        return db

    def __exit__(self, *exc) -> None:
        try:
            self._tx.__exit__(*exc)
        finally:
            self._conn.__exit__(*exc)


class RowImages:
    """The image side of the shared gallery: crops and thumbnails live in the face rows (`pg.py`), so
    there is nothing to write before the transaction, nothing to remove after it, no orphan to sweep."""

    def __init__(self, store: PgMetadataStore):
        self.store = store

    @staticmethod
    def write(faces: list[NewFace]) -> list[str]:
        return [secrets.token_hex(16) for _ in faces]

    @staticmethod
    def remove(tokens: list[str]) -> dict[str, int]:
        """The rows holding them were deleted by the committed transaction: one crop and thumbnail each."""
        return {"crops": len(tokens), "thumbnails": len(tokens)}

    @staticmethod
    def sweep(referenced, min_age_s: float) -> int:
        """Nothing to sweep (and the tokens are not even read: a large gallery has millions)."""
        return 0

    def read(self, token: str, kind: str) -> bytes | None:
        return self.store.image(token, kind)


def _insert_faces(db: psycopg.Connection, person_id: str, faces: list[NewFace], tokens: list[str]) -> None:
    """The faces' rows with their crop and thumbnail, their vectors and one `add` change each."""
    now = time.time()
    for face, token in zip(faces, tokens, strict=True):
        face_id = db.execute(
            "INSERT INTO faces (person_id, token, box, detection_score, created_at, crop, thumbnail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (person_id, token, Jsonb(face.box), face.detection_score, now, png(face.crop), face.thumbnail),
        ).fetchone()[0]
        db.cursor().executemany(
            "INSERT INTO vectors (face_id, space, vector) VALUES (%s, %s, %s)",
            [(face_id, space, normalised(v).tobytes()) for space, v in face.vectors.items()],
        )
        db.execute("INSERT INTO changes (face_id, op) VALUES (%s, 'add')", (face_id,))


def _copy_person(db: psycopg.Connection, person: dict) -> int:
    inserted = db.execute(
        "INSERT INTO persons (id, name, metadata, created_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (person["id"], person["name"], Jsonb(person["metadata"]), person["created_at"]),
    ).rowcount
    if not inserted:
        return 0
    for f in person["faces"]:
        db.execute(
            "INSERT INTO faces (id, person_id, token, box, detection_score, created_at, crop, thumbnail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (f["id"], person["id"], f["token"], Jsonb(f["box"]), f["detection_score"], f["created_at"])
            + (f["crop"], f["thumbnail"]),
        )
        db.cursor().executemany(
            "INSERT INTO vectors (face_id, space, vector) VALUES (%s, %s, %s)",
            [(f["id"], space, vector) for space, vector in f["vectors"].items()],
        )
        db.execute("INSERT INTO changes (face_id, op) VALUES (%s, 'add')", (f["id"],))
    return 1


def _token(db: psycopg.Connection, person_id: str, face_id: int) -> str | None:
    row = db.execute(
        "SELECT token FROM faces WHERE id = %s AND person_id = %s", (face_id, person_id)
    ).fetchone()
    return None if row is None else row[0]


def _vector_count(db: psycopg.Connection, face_ids: list[int]) -> int:
    return db.execute("SELECT COUNT(*) FROM vectors WHERE face_id = ANY(%s)", (face_ids,)).fetchone()[0]


def _erased(tokens: list[str], vectors: int, already: bool = False) -> dict:
    return {"tokens": tokens, "faces": len(tokens), "vectors": vectors, "already_deleted": already}


def _stacked(rows: list) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


def _person(row: tuple, faces: list) -> dict:
    person_id, name, metadata, created_at = row
    return {
        "id": person_id,
        "name": name,
        "metadata": metadata,
        "created_at": created_at,
        "faces": [{"id": f[0], "box": f[1], "detection_score": f[2], "created_at": f[3]} for f in faces],
    }
