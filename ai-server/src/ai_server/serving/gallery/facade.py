"""`Gallery`: the one object the service and the command line use; it keeps the truth (SQLite or
PostgreSQL), the crops and thumbnails and the search index (FAISS or Milvus) consistent, on either backend
(`backends.py`; the order of every write is in `gallery/__init__.py`)."""

import os
import secrets

import numpy as np

from ..errors import Code, ServiceError
from . import backends
from .backends import Backend
from .records import Match, NewFace, normalised

ORPHAN_MIN_AGE_S = 3600.0


class Gallery:
    def __init__(
        self, backend: Backend, spaces: dict[str, int], verify: bool = True, sync_every_s: float = 5.0
    ):
        """The gallery on `backend` (`backends.embedded(data_dir)`, `backends.shared(url, uri)` or
        `backends.from_settings`) for the given vector spaces {name: dim}. `verify=False` skips the model
        guard: only for re-embedding. Other processes' writes reach this one's index within
        `sync_every_s` even when it serves no search."""
        self.backend = backend
        self.metadata, self.files = backend.metadata, backend.images
        self.spaces = dict(spaces)
        self._size: tuple[int, int] | None = None
        try:
            if verify:
                self._refuse_other_models()
            self.index = backend.index(self.spaces)
        except BaseException:
            backend.close()
            raise
        self.index.keep_in_sync(sync_every_s)

    @classmethod
    def embedded(
        cls, data_dir: str | os.PathLike, spaces: dict[str, int], index_kind: str = "auto", **options
    ):
        """The embedded gallery under `data_dir` (SQLite, files, FAISS)."""
        hnsw_threshold = options.pop("hnsw_threshold", 50_000)
        return cls(backends.embedded(data_dir, index_kind, hnsw_threshold), spaces, **options)

    def _refuse_other_models(self) -> None:
        """Vectors of one model are never compared with another's: every face needs every space."""
        for space in self.spaces:
            missing = len(self.metadata.faces_without(space))
            if missing:
                raise ServiceError(
                    Code.MODEL_MISMATCH,
                    f"{missing} enrolled faces have no vectors from {space}: they were enrolled with "
                    "another model. Run `ai-server reembed` to compute them with the current model.",
                )

    # -- writes: files (embedded) first, then one transaction, then the index; deletions files last ------
    def add_person(self, name: str, metadata: dict, faces: list[NewFace]) -> dict:
        """Enrol a person with one or more faces, all or nothing."""
        self._check_new_faces(faces)
        tokens = self.files.write(faces)
        person_id = secrets.token_hex(8)
        self.metadata.add_person(person_id, name, metadata, faces, tokens)
        self.index.sync()
        return self.metadata.person(person_id)

    def add_faces(self, person_id: str, faces: list[NewFace]) -> dict:
        self._check_new_faces(faces)
        tokens = self.files.write(faces)
        if not self.metadata.add_faces(person_id, faces, tokens):
            self.files.remove(tokens)
            raise ServiceError(Code.NOT_FOUND, f"no person {person_id}")
        self.index.sync()
        return self.metadata.person(person_id)

    def _check_new_faces(self, faces: list[NewFace]) -> None:
        if not faces:
            raise ServiceError(Code.NO_FACE_FOUND, "none of the images has a usable face")
        for face in faces:
            if missing := set(self.spaces) - set(face.vectors):
                raise ValueError(f"face lacks vectors for {sorted(missing)}")

    def delete_person(self, person_id: str) -> dict | None:
        """Erase a person: rows and vectors, crops and thumbnails, the search index's entries, then what
        the backend can purge (embedded: SQLite overwrites and truncates its WAL, the other processes'
        FAISS entries go within SYNC_EVERY_S; shared: VACUUM, Milvus delete + compact). The erasure
        report, or None if the person never existed; a person erased before reports `already_deleted`
        and nothing removed."""
        erased = self.metadata.delete_person(person_id)
        return None if erased is None else self._finish_erasure(erased)

    def delete_face(self, person_id: str, face_id: int) -> dict | None:
        """Erase one face the same way; its report, or None if the person has no such face."""
        erased = self.metadata.delete_face(person_id, face_id)
        return None if erased is None else self._finish_erasure(erased)

    def _finish_erasure(self, erased: dict) -> dict:
        removed = self.files.remove(erased["tokens"])
        self.index.sync()
        purged = {**self.metadata.purge(), **self.index.purge()}
        keys = ("faces", "vectors", "already_deleted")
        return {**{k: erased[k] for k in keys}, **removed, **purged}

    def set_vectors(self, space: str, vectors: dict[int, np.ndarray]) -> None:
        """Store (re-embedded) vectors of existing faces in a space; every index picks them up at its next
        sync (the servers' background replay: not here, where an HNSW index would rebuild per batch)."""
        self.metadata.replace_vectors(space, vectors)

    def faces_missing(self, space: str) -> dict[int, str]:
        """{face id: its crop's token} of faces without a vector in `space` (to re-embed)."""
        return dict(self.metadata.faces_without(space))

    def crop(self, token: str) -> bytes | None:
        """A face's aligned crop (PNG), by the token `faces_missing` gave."""
        return self.files.read(token, "crop")

    def remove_orphans(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> int:
        """Delete crop/thumbnail files no face row refers to (left by a crash before a commit). Files
        younger than `min_age_s` may belong to an enrolment in progress and are kept."""
        return self.files.sweep(self.metadata.tokens, min_age_s)

    # -- reads ------------------------------------------------------------------------------------------
    def search(self, space: str, vector: np.ndarray, k: int) -> list[Match]:
        """The k most similar persons, each scored by its best face (cosine similarity)."""
        if space not in self.spaces:
            raise ServiceError(Code.UNKNOWN_MODEL, f"the gallery serves {sorted(self.spaces)}, not {space}")
        self.index.sync()
        best = self.index.best_per_person(space, normalised(vector), k)
        owners = self.metadata.owners([face_id for _, _, face_id in best])
        return [
            Match(person, *owners[face_id][1:], score, face_id)
            for person, score, face_id in best
            if owners.get(face_id, (None,))[0] == person  # not deleted since (nor left in Milvus by a crash)
        ]

    def get_person(self, person_id: str) -> dict | None:
        return self.metadata.person(person_id)

    def list_persons(self, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
        return self.metadata.persons(offset, limit)

    def face_image(self, person_id: str, face_id: int, kind: str = "thumbnail") -> bytes | None:
        """The thumbnail JPEG (or `kind="crop"`: the aligned crop PNG) of a person's face, if both exist."""
        token = self.metadata.token(person_id, face_id)
        return None if token is None else self.files.read(token, kind)

    def stats(self) -> dict:
        sizes, kinds = self.index.sizes(), self.index.kinds()
        return {**self.metadata.counts(), "backend": self.backend.name, "spaces": sizes, "index": kinds}

    def repair(self) -> dict[str, int]:
        """Rebuild the search index from the truth (`ai-server gallery repair`); vectors per space."""
        rebuilt = self.index.rebuild()
        return rebuilt if isinstance(rebuilt, dict) else self.index.sizes()

    def close(self) -> None:
        if hasattr(self.index, "close"):
            self.index.close()
        self.backend.close()

    def size(self) -> tuple[int, int]:
        """(persons, version) as a match reports them, counted again only when the version moved: a
        COUNT(*) per search would scan the persons table of a large shared gallery every time."""
        version = self.metadata.latest_change()
        if self._size is None or self._size[1] != version:
            self._size = (self.metadata.counts()["persons"], version)
        return self._size

    def version(self) -> int:
        """Grows with every enrolment and deletion: a cache of search results keys on it."""
        return self.metadata.latest_change()
