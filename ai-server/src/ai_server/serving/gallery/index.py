"""The gallery's search indexes: per-process FAISS caches of the vectors in SQLite.

Every process (gunicorn worker) builds its indexes from SQLite when it opens the gallery and, before each
search, replays the `changes` rows committed since its last look, by any process. So nothing here is
ever the truth: losing it costs a rebuild, and a process cannot miss an enrolment or deletion another
one acknowledged.

A deleted face's vector is overwritten with zeros inside the index before it is dropped (HNSW cannot drop
it, only filter it), and every process also replays the log in the background every `SYNC_EVERY_S`, so an
erased person's vectors leave the memory of an idle worker too, not only of the one that deleted them.
"""

import logging
import threading
import weakref

import faiss
import numpy as np

from .metadata import MetadataStore

HNSW_REBUILD_FRACTION = 0.2  # deleted / live ids above which an HNSW index is rebuilt
SYNC_EVERY_S = 5.0
log = logging.getLogger("ai_server")


class VectorIndex:
    """One vector space's FAISS index with face ids: exact inner product for small galleries, HNSW for
    large ones (HNSW cannot delete, so deleted ids are filtered and the index is rebuilt when many)."""

    def __init__(self, dim: int, kind: str):
        self.dim, self.kind = dim, kind
        if kind == "flat":
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            hnsw.hnsw.efSearch = 512  # recall@5 0.93 vs 0.80 at 128 on 100k hard synthetic vectors (bench)
            self.index = faiss.IndexIDMap2(hnsw)
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        self.ids: set[int] = set()
        self.deleted: set[int] = set()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
            self.ids.update(int(i) for i in ids)

    def remove(self, face_id: int) -> None:
        """Forget a face: its stored vector is zeroed first, then dropped (flat) or filtered (HNSW)."""
        if face_id not in self.ids:
            return
        self.ids.discard(face_id)
        self._zero(face_id)
        if self.kind == "flat":
            self.index.remove_ids(np.array([face_id], dtype=np.int64))
        else:
            self.deleted.add(face_id)

    def _zero(self, face_id: int) -> None:
        """Overwrite the face's vector in the index's own storage (flat codes, or HNSW's flat storage)."""
        positions = np.flatnonzero(faiss.vector_to_array(self.index.id_map) == face_id)
        inner = faiss.downcast_index(self.index.index)
        storage = faiss.downcast_index(inner.storage) if self.kind == "hnsw" else inner
        codes = faiss.rev_swig_ptr(storage.codes.data(), storage.codes.size())
        width = storage.code_size
        for position in positions.tolist():
            codes[position * width : (position + 1) * width] = 0

    def holds(self, face_id: int) -> bool:
        """Whether the index has (or had, for HNSW) a vector for this face."""
        return face_id in self.ids or face_id in self.deleted

    def needs_rebuild(self) -> bool:
        return self.kind == "hnsw" and len(self.deleted) > HNSW_REBUILD_FRACTION * max(1, len(self))

    def search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n + len(self.deleted), self.index.ntotal)
        if n == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        # One OpenMP thread for one query (the setting is per thread): requests already search side by
        # side, and a team of 2 waiting for a busy core made a 30k flat search 9x slower (bench/gallery_1m.py)
        faiss.omp_set_num_threads(1)
        scores, ids = self.index.search(vector.reshape(1, -1), n)
        keep = (ids[0] >= 0) & ~np.isin(ids[0], list(self.deleted))
        return scores[0][keep], ids[0][keep]

    def __len__(self) -> int:
        return len(self.ids)


class GalleryIndex:
    """Every space's `VectorIndex` plus which person each face belongs to, in step with SQLite."""

    def __init__(self, store: MetadataStore, spaces: dict[str, int], kind: str, hnsw_threshold: int):
        self.store, self.spaces = store, dict(spaces)
        self.kind_setting, self.hnsw_threshold = kind, hnsw_threshold
        self._lock = threading.RLock()
        self.rebuild()

    def keep_in_sync(self, every_s: float = SYNC_EVERY_S) -> None:
        """Replay the log in the background too (a daemon thread that ends with this index), so deletions
        reach this process's memory even when it serves no search."""
        ref = weakref.ref(self)

        def loop() -> None:
            while (index := ref()) is not None:
                try:
                    index.sync()
                except Exception:  # the gallery went away (its folder removed): stop quietly
                    log.debug("background index sync stopped", exc_info=True)
                    return
                del index
                threading.Event().wait(every_s)

        threading.Thread(target=loop, daemon=True, name="index-sync").start()

    def rebuild(self) -> None:
        """Build every space's index from SQLite (at open, and when HNSW has too many deletions)."""
        with self._lock:
            self.seq = self.store.latest_change()
            self.person_of = self.store.face_owners()
            kind = self.kind_setting
            if kind == "auto":
                kind = "hnsw" if len(self.person_of) >= self.hnsw_threshold else "flat"
            self.indexes = {}
            for space, dim in self.spaces.items():
                index = VectorIndex(dim, kind)
                index.add(*self.store.vectors(space))
                self.indexes[space] = index

    def sync(self) -> None:
        """Apply the changes other processes (or threads) committed since this index last looked."""
        if self.store.latest_change() == self.seq:
            return
        with self._lock:
            added = self._replay(self.store.changes_since(self.seq))
            fresh = [f for f in added if f in self.person_of]
            for space, index in self.indexes.items():
                if index.kind == "hnsw" and any(index.holds(f) for f in fresh):
                    self.rebuild()  # HNSW cannot replace a vector in place
                    return
                for face_id in fresh:
                    index.remove(face_id)  # a re-embedded face replaces its old vector
                if fresh:
                    index.add(*self.store.vectors(space, fresh))
                if index.needs_rebuild():
                    self.rebuild()
                    return

    def _replay(self, changes: list) -> list[int]:
        """Apply deletions and face owners from the log; the faces added (their vectors still to load)."""
        added = []
        for seq, face_id, op, person_id in changes:
            if op == "add" and person_id is not None:
                self.person_of[face_id] = person_id
                added.append(face_id)
            elif op == "del":
                self.person_of.pop(face_id, None)
                for index in self.indexes.values():
                    index.remove(face_id)
            self.seq = max(self.seq, seq)
        return added

    def best_per_person(self, space: str, query: np.ndarray, k: int) -> list[tuple[str, float, int]]:
        """(person id, best similarity, that face's id) of the k persons most similar to `query`."""
        with self._lock:
            index = self.indexes[space]
            n = max(4 * k, 32)
            while True:
                best: dict[str, tuple[float, int]] = {}
                scores, ids = index.search(query, n)
                for score, face_id in zip(scores.tolist(), ids.tolist(), strict=True):
                    person = self.person_of.get(face_id)
                    if person is not None and person not in best:
                        best[person] = (score, face_id)  # results come best first
                if len(best) >= k or n >= index.index.ntotal:
                    break
                n *= 4  # many faces per person: look further for k distinct persons
        top = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        return [(person, score, face_id) for person, (score, face_id) in top]

    def purge(self) -> dict:
        """Nothing more to do after an erasure: `remove` zeroed the vectors in this process's index."""
        return {}

    def sizes(self) -> dict[str, int]:
        return {space: len(index) for space, index in self.indexes.items()}

    def kinds(self) -> dict[str, str]:
        return {space: index.kind for space, index in self.indexes.items()}
