"""The shared gallery's search index: Milvus, one collection per vector space, a replayed copy of the
vectors in PostgreSQL (`pg.py`), never the truth.

- A collection holds one row per face (`face_id` primary key, `person_id`, the normalised `vector`),
  searched by inner product (cosine) with Strong consistency, so a vector upserted through one replica is
  found through every other at once. Per-person top-k is Milvus's grouping search on `person_id`.
- Every write commits in PostgreSQL first (with a `changes` row), then `sync()` replays the log after
  Milvus's watermark (`gallery_state.milvus_seq`, in PostgreSQL) into Milvus: an upsert of each changed
  face's current vectors, or a delete when the face is gone. Replays take turns on an advisory lock and
  read the current rows, so they are idempotent and a late one cannot bring back a deleted face. A replica
  killed between its commit and its upsert leaves a gap the next replay (any replica: before a search,
  every few seconds, at start) fills.
- At start, a missing collection, or one whose row count differs from PostgreSQL's, is rebuilt from
  PostgreSQL; `rebuild()` (`ai-server gallery repair`) rebuilds every collection.
Results are only candidates: the facade keeps the faces that still exist in PostgreSQL.
"""

import hashlib
import logging
import threading
import weakref

import numpy as np

from .pg import SYNC_LOCK, PgMetadataStore

BATCH = 1000
SYNC_EVERY_S = 5.0
INDEX_TYPES = {"auto": "AUTOINDEX", "flat": "FLAT", "hnsw": "HNSW"}
HNSW_EF = 512  # as the embedded HNSW index (index.py)
# pymilvus pings every 10 s even when idle; gRPC servers with the default policy (milvus-lite's among them)
# answer that with GOAWAY "too_many_pings" and a failed reconnect. Ping only during calls, every 5 min.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}
log = logging.getLogger("ai_server")


class MilvusIndex:
    """Every space's collection in one Milvus, kept in step with the PostgreSQL log."""

    def __init__(self, store: PgMetadataStore, spaces: dict[str, int], uri: str, kind: str = "auto"):
        from pymilvus import MilvusClient  # only the shared backend pays for importing it

        self.store, self.spaces, self.kind = store, dict(spaces), INDEX_TYPES[kind]
        self.client = MilvusClient(uri=uri, timeout=60, grpc_options=GRPC_OPTIONS)
        gallery = store.gallery_id()
        self.collections = {space: collection_name(gallery, space) for space in self.spaces}
        self._open()

    def _open(self) -> None:
        """Create missing collections and rebuild any that do not hold what PostgreSQL holds."""
        with self.store.pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK,))
            self._replay(db)
            counts = self.store.vector_counts()
            for space in self.spaces:
                if self._count(space) != counts.get(space, 0):
                    log.warning("rebuilding a Milvus collection from PostgreSQL", extra={"space": space})
                    self._load(space)

    def keep_in_sync(self, every_s: float = SYNC_EVERY_S) -> None:
        """Replay the log in the background too (a daemon thread that ends with this index)."""
        ref = weakref.ref(self)

        def loop() -> None:
            while (index := ref()) is not None and not index.store.pool.closed:
                try:
                    index.sync()
                except Exception:  # PostgreSQL or Milvus away for a moment: the next round retries
                    log.warning("Milvus sync failed", exc_info=True)
                del index
                threading.Event().wait(every_s)

        threading.Thread(target=loop, daemon=True, name="milvus-sync").start()

    def sync(self) -> None:
        """Replay every change committed after Milvus's watermark (one cheap query when there is none)."""
        state = self.store.fetch_one(
            "SELECT milvus_seq, (SELECT COALESCE(MAX(seq), 0) FROM changes) FROM gallery_state"
        )
        if state[0] >= state[1]:
            return
        with self.store.pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK,))
            self._replay(db)

    def _replay(self, db) -> None:
        """Under SYNC_LOCK: apply the changes after the watermark to every collection, then move it."""
        for space in self.spaces:
            self._ensure(space)
        watermark = db.execute("SELECT milvus_seq FROM gallery_state").fetchone()[0]
        rows = db.execute(
            "SELECT seq, face_id FROM changes WHERE seq > %s ORDER BY seq", (watermark,)
        ).fetchall()
        if not rows:
            return
        touched = sorted({r[1] for r in rows})
        for start in range(0, len(touched), BATCH):
            self._apply(db, touched[start : start + BATCH])
        db.execute("UPDATE gallery_state SET milvus_seq = %s", (rows[-1][0],))

    def _apply(self, db, face_ids: list[int]) -> None:
        """Upsert the current vectors of those faces that exist; delete the others' from Milvus."""
        owners = dict(
            db.execute("SELECT id, person_id FROM faces WHERE id = ANY(%s)", (face_ids,)).fetchall()
        )
        for space, name in self.collections.items():
            found = db.execute(
                "SELECT face_id, vector FROM vectors WHERE space = %s AND face_id = ANY(%s)",
                (space, face_ids),
            ).fetchall()
            rows = [_row(face_id, owners[face_id], vector) for face_id, vector in found if face_id in owners]
            if rows:
                self.client.upsert(name, rows)
            gone = sorted(set(face_ids) - {r["face_id"] for r in rows})
            if gone:
                self.client.delete(name, ids=gone)

    def _ensure(self, space: str) -> bool:
        """Create the space's collection if it is missing; whether it was."""
        from pymilvus import DataType, MilvusClient

        name = self.collections[space]
        if self.client.has_collection(name):
            return False
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=space)
        schema.add_field("face_id", DataType.INT64, is_primary=True)
        schema.add_field("person_id", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.spaces[space])
        params = self.client.prepare_index_params()
        extra = {"M": 32, "efConstruction": 80} if self.kind == "HNSW" else {}
        params.add_index("vector", index_type=self.kind, metric_type="IP", params=extra)
        self.client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        return True

    def _load(self, space: str) -> None:
        """Drop the space's collection and fill a new one with every vector PostgreSQL holds."""
        self.client.drop_collection(self.collections[space])
        self._ensure(space)
        owners = self.store.fetch_all("SELECT id, person_id FROM faces")
        person_of = dict(owners)
        ids = sorted(person_of)
        for start in range(0, len(ids), BATCH):
            chunk, vectors = self.store.vectors(space, ids[start : start + BATCH])
            rows = [_row(int(f), person_of[int(f)], v) for f, v in zip(chunk.tolist(), vectors, strict=True)]
            if rows:
                self.client.upsert(self.collections[space], rows)
        self.client.flush(self.collections[space])

    def rebuild(self) -> dict[str, int]:
        """Rebuild every collection from PostgreSQL (repair); rows per space."""
        with self.store.pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK,))
            latest = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            for space in self.spaces:
                self._load(space)
            db.execute("UPDATE gallery_state SET milvus_seq = %s", (latest,))
        return {space: self._count(space) for space in self.spaces}

    def _count(self, space: str) -> int:
        name = self.collections[space]
        if not self.client.has_collection(name):
            return -1
        rows = self.client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"]) if rows else 0

    def best_per_person(self, space: str, query: np.ndarray, k: int) -> list[tuple[str, float, int]]:
        """(person id, best similarity, that face's id) of the k persons most similar to `query`."""
        params = {"metric_type": "IP", "params": {"ef": max(HNSW_EF, k)} if self.kind == "HNSW" else {}}
        found = self.client.search(
            self.collections[space],
            data=[np.asarray(query, np.float32).tolist()],
            limit=k,
            group_by_field="person_id",
            group_size=1,
            output_fields=["person_id"],
            search_params=params,
            consistency_level="Strong",
        )
        hits = [(h["entity"]["person_id"], float(h["distance"]), int(h["face_id"])) for h in found[0]]
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def purge(self) -> dict:
        """After an erasure: flush and compact, so deleted vectors leave Milvus's segments too."""
        for name in self.collections.values():
            self.client.flush(name)
            self.client.compact(name)
        return {"index_compacted": True}

    def close(self) -> None:
        self.client.close()

    def sizes(self) -> dict[str, int]:
        """Vectors per space: PostgreSQL's count, which Milvus mirrors after each sync."""
        counts = self.store.vector_counts()
        return {space: counts.get(space, 0) for space in self.spaces}

    def kinds(self) -> dict[str, str]:
        return {space: f"milvus:{self.kind.lower()}" for space in self.spaces}


def collection_name(gallery_id: str, space: str) -> str:
    """Milvus names allow letters, digits and _: the gallery's id (a fresh database never meets another
    gallery's collections) and a hash of the space's name (which holds @, / and -)."""
    return f"gallery_{gallery_id}_{hashlib.sha256(space.encode()).hexdigest()[:16]}"


def _row(face_id: int, person_id: str, vector) -> dict:
    v = np.frombuffer(vector, np.float32) if isinstance(vector, bytes | memoryview) else vector
    return {"face_id": int(face_id), "person_id": person_id, "vector": np.asarray(v, np.float32).tolist()}
