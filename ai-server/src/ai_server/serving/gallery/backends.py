"""The two gallery backends as the parts `Gallery` is built from: where the truth is (`metadata`), where
the crops and thumbnails are (`images`) and how the search index over it is made (`index`).

- embedded (the default): SQLite + files under one data directory + per-process FAISS indexes. One
  process tree on one disk.
- shared (AI_SERVER_POSTGRES_URL and AI_SERVER_MILVUS_URI): PostgreSQL (truth, crops and thumbnails in
  the rows) + Milvus (search). Any number of replicas on any machines.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import FileStore
from .metadata import DATABASE_FILE, MetadataStore


@dataclass
class Backend:
    name: str  # "embedded" or "shared"
    metadata: Any  # MetadataStore | PgMetadataStore: the same interface
    images: Any  # FileStore | RowImages
    index: Callable[[dict[str, int]], Any]  # spaces -> GalleryIndex | MilvusIndex

    def close(self) -> None:
        if hasattr(self.metadata, "close"):
            self.metadata.close()


def embedded(data_dir: str | Path, index_kind: str = "auto", hnsw_threshold: int = 50_000) -> Backend:
    from .index import GalleryIndex

    root = Path(data_dir)
    images = FileStore(root)  # creates the folder too
    metadata = MetadataStore(root / DATABASE_FILE)
    return Backend(
        "embedded",
        metadata,
        images,
        lambda spaces: GalleryIndex(metadata, spaces, index_kind, hnsw_threshold),
    )


def shared(postgres_url: str, milvus_uri: str, index_kind: str = "auto") -> Backend:
    from .milvus import MilvusIndex
    from .pg import PgMetadataStore, RowImages

    metadata = PgMetadataStore(postgres_url)
    return Backend(
        "shared",
        metadata,
        RowImages(metadata),
        lambda spaces: MilvusIndex(metadata, spaces, milvus_uri, index_kind),
    )


def from_settings(settings) -> Backend:
    """The backend the AI_SERVER_* settings choose: shared when a PostgreSQL URL is set, else embedded."""
    if settings.postgres_url:
        return shared(settings.postgres_conninfo(), settings.milvus_uri, settings.index)
    return embedded(settings.data_dir, settings.index, settings.hnsw_threshold)
