"""Erasure in the gallery itself, on both backends (real SQLite and FAISS indexes, flat and HNSW; real
PostgreSQL and Milvus): a deleted person's name and vectors are in no row and in no search index of any
process (HNSW cannot remove one, so it used to keep it), their crops and thumbnails are gone, and deleting
them again is answered as done. Embedded, not even the bytes remain in the database, its WAL or the
folder; PostgreSQL's VACUUM gives less (see gallery/pg.py), so there the rows are checked. The HTTP side
is tests/reliability/test_erasure.py."""

import time

import faiss
import numpy as np
import psycopg
import pytest

from ai_server.serving.gallery import Gallery, NewFace
from ai_server.serving.gallery.records import normalised

SPACE = "m@1/embedding"


def face(seed: int) -> NewFace:
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    return NewFace(crop, b"\xff\xd8" + rng.bytes(400), {SPACE: rng.normal(size=16)}, [0, 0, 112, 112], 0.99)


def stored_vectors(gallery: Gallery) -> bytes:
    """Every byte of the vectors the search index holds: this process's FAISS storage (not a search
    result), or every row of the Milvus collection."""
    if gallery.backend.name == "shared":
        index = gallery.index
        rows = index.client.query(index.collections[SPACE], filter="face_id >= 0", output_fields=["vector"])
        return b"".join(np.asarray(r["vector"], np.float32).tobytes() for r in rows)
    index = gallery.index.indexes[SPACE].index
    inner = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if hasattr(inner, "hnsw") else inner
    return faiss.vector_to_array(storage.codes).tobytes()


def stored_rows(open_backend, tmp_path) -> bytes:
    """Everything the truth holds: embedded, every byte under the data folder (SQLite, WAL, files);
    shared, every row of every table of the gallery's database, as text."""
    if open_backend.kind == "embedded":
        return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    with psycopg.connect(open_backend.location["postgres_url"]) as db:
        tables = [r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        dumped = [db.execute(f"SELECT t::text FROM {table} t").fetchall() for table in tables]
        blobs = db.execute("SELECT crop, thumbnail FROM faces").fetchall()
        vectors = db.execute("SELECT vector FROM vectors").fetchall()
    text = "\n".join(str(r[0]) for rows in dumped for r in rows).encode()
    return text + b"".join(bytes(b) for row in blobs + vectors for b in row)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_deleted_person_leaves_no_name_or_vector_anywhere(open_backend, tmp_path, kind):
    gallery = Gallery(open_backend(kind), {SPACE: 16})
    other_worker = Gallery(open_backend(kind), {SPACE: 16}, sync_every_s=0.1)
    faces = [face(1), face(2)]
    victim = gallery.add_person("Vera Vectorova", {"contact": "+44 7700 900999"}, faces)
    kept = gallery.add_person("Kept Person", {}, [face(3)])
    vectors = [normalised(f.vectors[SPACE]).tobytes() for f in faces]
    other_worker.index.sync()
    assert all(v in stored_vectors(other_worker) for v in vectors)

    erasure = gallery.delete_person(victim["id"])
    purged = {"wal_truncated": True}
    if open_backend.kind == "shared":
        purged = {"wal_truncated": False, "vacuumed": True, "index_compacted": True}
    assert erasure == {
        "faces": 2,
        "vectors": 2,
        "already_deleted": False,
        "crops": 2,
        "thumbnails": 2,
        **purged,
    }
    assert not any(v in stored_vectors(gallery) for v in vectors)
    deadline = time.time() + 5  # the other process, without a search of its own: its background sync
    while any(v in stored_vectors(other_worker) for v in vectors) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(v in stored_vectors(other_worker) for v in vectors)
    stored = stored_rows(open_backend, tmp_path)
    assert b"Kept Person" in stored  # the check can see what is there
    for needle in (b"Vera Vectorova", b"900999", faces[0].thumbnail, *vectors):
        assert needle not in stored
    assert [m.person_id for m in other_worker.search(SPACE, faces[0].vectors[SPACE], 5)] == [kept["id"]]
    again = gallery.delete_person(victim["id"])  # repeated: done, nothing left to remove
    assert again["already_deleted"] and again["faces"] == again["crops"] == 0
    assert gallery.delete_person("never-enrolled") is None
