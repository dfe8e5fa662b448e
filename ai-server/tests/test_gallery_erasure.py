"""Erasure in the gallery itself, on real SQLite and real FAISS indexes (flat and HNSW): a deleted person's
name and vectors are in neither the database nor its WAL, their vectors are overwritten inside every
process's index (HNSW cannot remove one, so it used to keep it), their files are gone, and deleting them
again is answered as done. The HTTP side is tests/reliability/test_erasure.py."""

import time

import faiss
import numpy as np
import pytest

from ai_server.serving.gallery import Gallery, NewFace
from ai_server.serving.gallery.records import normalised

SPACE = "m@1/embedding"


def face(seed: int) -> NewFace:
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    return NewFace(crop, b"\xff\xd8" + rng.bytes(400), {SPACE: rng.normal(size=16)}, [0, 0, 112, 112], 0.99)


def stored_vectors(gallery: Gallery) -> bytes:
    """Every byte of the vectors this process's index holds (its own storage, not a search result)."""
    index = gallery.index.indexes[SPACE].index
    inner = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if hasattr(inner, "hnsw") else inner
    return faiss.vector_to_array(storage.codes).tobytes()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_deleted_person_leaves_no_name_or_vector_anywhere(tmp_path, kind):
    gallery = Gallery(tmp_path, {SPACE: 16}, index_kind=kind)
    other_worker = Gallery(tmp_path, {SPACE: 16}, index_kind=kind, sync_every_s=0.1)
    faces = [face(1), face(2)]
    victim = gallery.add_person("Vera Vectorova", {"contact": "+44 7700 900999"}, faces)
    kept = gallery.add_person("Kept Person", {}, [face(3)])
    vectors = [normalised(f.vectors[SPACE]).tobytes() for f in faces]
    other_worker.index.sync()
    assert all(v in stored_vectors(other_worker) for v in vectors)

    erasure = gallery.delete_person(victim["id"])
    assert erasure == {
        "faces": 2,
        "vectors": 2,
        "already_deleted": False,
        "crops": 2,
        "thumbnails": 2,
        "wal_truncated": True,
    }
    assert not any(v in stored_vectors(gallery) for v in vectors)
    deadline = time.time() + 5  # the other process, without a search of its own: its background sync
    while any(v in stored_vectors(other_worker) for v in vectors) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(v in stored_vectors(other_worker) for v in vectors)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for needle in (b"Vera Vectorova", b"900999", faces[0].thumbnail, *vectors):
        assert needle not in on_disk
    assert [m.person_id for m in other_worker.search(SPACE, faces[0].vectors[SPACE], 5)] == [kept["id"]]
    again = gallery.delete_person(victim["id"])  # repeated: done, nothing left to remove
    assert again["already_deleted"] and again["faces"] == again["crops"] == 0
    assert gallery.delete_person("never-enrolled") is None
