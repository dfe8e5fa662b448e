"""Maintenance of the shared gallery from the command line: `repair` and `migrate`.

`ai-server gallery repair` rebuilds every Milvus collection from PostgreSQL (the truth), for a Milvus
that was lost, restored from an older backup or suspected to differ; replicas keep serving meanwhile
(searches of a collection being rebuilt fail for that moment).

`ai-server gallery migrate`: copy an embedded gallery (SQLite + files) into a shared one (PostgreSQL +
Milvus) without losing anything: persons, faces with their ids, every space's vectors (bit for bit),
crops, thumbnails and the erased ids; then Milvus is built from PostgreSQL, as a repair would.

The source is only read, so the embedded gallery keeps working until the service is switched over (stop
writes first: what is enrolled after the copy is not in it). A persons batch commits in one transaction;
an interrupted migration is run again and skips the persons already copied.
"""

import os
from pathlib import Path

from .files import FileStore
from .metadata import DATABASE_FILE, MetadataStore
from .milvus import MilvusIndex
from .pg import PgMetadataStore


class MigrationError(ValueError):
    """The source is not an embedded gallery, or one of its faces lacks its files."""


def migrate(
    data_dir: str | os.PathLike, postgres_url: str, milvus_uri: str, index_kind: str = "auto"
) -> dict:
    """Copy the gallery in `data_dir` into PostgreSQL and Milvus; what was copied and what is there now."""
    root = Path(data_dir)
    if not (root / DATABASE_FILE).is_file():
        raise MigrationError(f"{root} holds no embedded gallery ({DATABASE_FILE})")
    source, files = MetadataStore(root / DATABASE_FILE), FileStore(root)
    target = PgMetadataStore(postgres_url)
    try:
        added = 0
        for persons in source.dump():
            for person in persons:
                _attach_images(files, person)
            added += target.copy_in(persons)
        target.copy_in([], source.erased())
        spaces = source.space_dims()
        index = MilvusIndex(target, spaces, milvus_uri, index_kind)
        indexed = index.rebuild()
        index.close()
        return {"persons_copied": added, **target.counts(), "milvus": indexed}
    finally:
        target.close()


def _attach_images(files: FileStore, person: dict) -> None:
    for face in person["faces"]:
        face["crop"], face["thumbnail"] = (
            files.read(face["token"], "crop"),
            files.read(face["token"], "thumbnail"),
        )
        if face["crop"] is None or face["thumbnail"] is None:
            raise MigrationError(f"face {face['id']} of person {person['id']} has lost its crop or thumbnail")


def repair(postgres_url: str, milvus_uri: str, index_kind: str = "auto") -> dict[str, int]:
    """Rebuild Milvus from PostgreSQL for every space PostgreSQL holds vectors of; rows per space."""
    store = PgMetadataStore(postgres_url)
    try:
        index = MilvusIndex(store, store.space_dims(), milvus_uri, index_kind)
        rebuilt = index.rebuild()
        index.close()
        return rebuilt
    finally:
        store.close()
