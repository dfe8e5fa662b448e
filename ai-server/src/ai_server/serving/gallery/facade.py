"""`Gallery`: the one object the service and the command line use; it keeps SQLite, the files and the
search indexes consistent (the order of every write is in `gallery/__init__.py`)."""

import os
import secrets
from pathlib import Path

import numpy as np

from ..errors import Code, ServiceError
from .files import FileStore
from .index import SYNC_EVERY_S, GalleryIndex
from .metadata import DATABASE_FILE, MetadataStore
from .records import Match, NewFace, normalised

ORPHAN_MIN_AGE_S = 3600.0


class Gallery:
    def __init__(
        self,
        data_dir: str | os.PathLike,
        spaces: dict[str, int],
        index_kind: str = "auto",
        hnsw_threshold: int = 50_000,
        verify: bool = True,
        sync_every_s: float = SYNC_EVERY_S,
    ):
        """Open (or create) the gallery under `data_dir` for the given vector spaces {name: dim}.
        `verify=False` skips the model guard: only for re-embedding. Other processes' deletions reach
        this one's index within `sync_every_s` even when it serves no search."""
        self.dir = Path(data_dir)
        self.files = FileStore(self.dir)
        self.metadata = MetadataStore(self.dir / DATABASE_FILE)
        self.spaces = dict(spaces)
        if verify:
            self._refuse_other_models()
        self.index = GalleryIndex(self.metadata, self.spaces, index_kind, hnsw_threshold)
        self.index.keep_in_sync(sync_every_s)

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

    # -- writes: files first, then one transaction; deletions the other way round -----------------------
    def add_person(self, name: str, metadata: dict, faces: list[NewFace]) -> dict:
        """Enrol a person with one or more faces, all or nothing."""
        self._check_new_faces(faces)
        tokens = self.files.write(faces)
        person_id = secrets.token_hex(8)
        with self.metadata.transaction() as db:
            self.metadata.insert_person(db, person_id, name, metadata)
            self.metadata.insert_faces(db, person_id, faces, tokens)
        self.index.sync()
        return self.metadata.person(person_id)

    def add_faces(self, person_id: str, faces: list[NewFace]) -> dict:
        self._check_new_faces(faces)
        tokens = self.files.write(faces)
        with self.metadata.transaction() as db:
            if not self.metadata.person_exists(db, person_id):
                self.files.remove(tokens)
                raise ServiceError(Code.NOT_FOUND, f"no person {person_id}")
            self.metadata.insert_faces(db, person_id, faces, tokens)
        self.index.sync()
        return self.metadata.person(person_id)

    def _check_new_faces(self, faces: list[NewFace]) -> None:
        if not faces:
            raise ServiceError(Code.NO_FACE_FOUND, "none of the images has a usable face")
        for face in faces:
            if missing := set(self.spaces) - set(face.vectors):
                raise ValueError(f"face lacks vectors for {sorted(missing)}")

    def delete_person(self, person_id: str) -> dict | None:
        """Erase a person: rows and vectors (overwritten in SQLite), crops and thumbnails, this process's
        index entries (the others' within SYNC_EVERY_S), the WAL. The erasure report, or None if the
        person never existed; a person erased before reports `already_deleted` and nothing removed."""
        erased = self.metadata.delete_person(person_id)
        return None if erased is None else self._finish_erasure(erased)

    def delete_face(self, person_id: str, face_id: int) -> dict | None:
        """Erase one face the same way; its report, or None if the person has no such face."""
        erased = self.metadata.delete_face(person_id, face_id)
        return None if erased is None else self._finish_erasure(erased)

    def _finish_erasure(self, erased: dict) -> dict:
        removed = self.files.remove(erased["tokens"])
        self.index.sync()
        checkpointed = self.metadata.checkpoint()
        keys = ("faces", "vectors", "already_deleted")
        return {**{k: erased[k] for k in keys}, **removed, "wal_truncated": checkpointed}

    def set_vectors(self, space: str, vectors: dict[int, np.ndarray]) -> None:
        """Store (re-embedded) vectors of existing faces in a space, and let every index pick them up."""
        self.metadata.replace_vectors(space, vectors)

    def faces_missing(self, space: str) -> list[tuple[int, Path]]:
        """(face id, aligned crop path) of faces without a vector in `space` (to re-embed)."""
        return [(face_id, self.files.crop(token)) for face_id, token in self.metadata.faces_without(space)]

    def remove_orphans(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> int:
        """Delete crop/thumbnail files no face row refers to (left by a crash before a commit). Files
        younger than `min_age_s` may belong to an enrolment in progress and are kept."""
        return self.files.sweep(self.metadata.tokens(), min_age_s)

    # -- reads ------------------------------------------------------------------------------------------
    def search(self, space: str, vector: np.ndarray, k: int) -> list[Match]:
        """The k most similar persons, each scored by its best face (cosine similarity)."""
        if space not in self.spaces:
            raise ServiceError(Code.UNKNOWN_MODEL, f"the gallery serves {sorted(self.spaces)}, not {space}")
        self.index.sync()
        best = self.index.best_per_person(space, normalised(vector), k)
        people = self.metadata.names([person for person, _, _ in best])
        return [
            Match(person, *people[person], score, face_id)
            for person, score, face_id in best
            if person in people  # deleted between the search and this read
        ]

    def get_person(self, person_id: str) -> dict | None:
        return self.metadata.person(person_id)

    def list_persons(self, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
        return self.metadata.persons(offset, limit)

    def face_file(self, person_id: str, face_id: int, kind: str = "thumbnail") -> Path | None:
        """The thumbnail (or `kind="crop"`: the aligned crop) of a person's face, if both exist."""
        token = self.metadata.token(person_id, face_id)
        if token is None:
            return None
        path = self.files.thumbnail(token) if kind == "thumbnail" else self.files.crop(token)
        return path if path.exists() else None

    def stats(self) -> dict:
        return {**self.metadata.counts(), "spaces": self.index.sizes(), "index": self.index.kinds()}

    def version(self) -> int:
        """Grows with every enrolment and deletion: a cache of search results keys on it."""
        return self.metadata.latest_change()
