"""The gallery's contract on both backends (`open_backend` in conftest.py: embedded SQLite + files + FAISS,
and shared PostgreSQL + Milvus on real engines): per-person top-k, what another process sees at once,
the model guard and re-embedding, deletion of a person or a face, and repair of a search index that
missed writes."""

import io

import numpy as np
import pytest
from PIL import Image

from ai_server.serving.errors import Code, ServiceError
from ai_server.serving.gallery import Gallery, NewFace
from ai_server.serving.gallery.records import normalised

A, B = "m@1/embedding", "n@2/embedding"


def face(seed: int, spaces=(A,), near: np.ndarray | None = None) -> NewFace:
    """A random face; with `near`, its vector in A is `near` plus a little noise (the same person)."""
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    vectors = {s: rng.normal(size=16) for s in spaces}
    if near is not None:
        vectors[A] = near + 0.1 * rng.normal(size=16)
    return NewFace(crop, b"\xff\xd8" + rng.bytes(300), vectors, [1.0, 2.0, 3.0, 4.0], 0.98)


def test_top_k_is_per_person_and_scored_by_the_best_face(open_backend):
    gallery = Gallery(open_backend(), {A: 16})
    rng = np.random.default_rng(0)
    centres = [rng.normal(size=16) for _ in range(6)]
    people = [
        gallery.add_person(f"P{i}", {"i": i}, [face(10 * i + j, near=c) for j in range(4)])
        for i, c in enumerate(centres)
    ]
    query = centres[2] + 0.05 * rng.normal(size=16)
    found = gallery.search(A, query, 3)
    assert len(found) == 3 and len({m.person_id for m in found}) == 3  # persons, not faces
    assert found[0].person_id == people[2]["id"] and found[0].name == "P2" and found[0].metadata == {"i": 2}
    assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)
    stored = {f["id"] for f in people[2]["faces"]}
    best = max(stored, key=lambda f: float(normalised(query) @ gallery.metadata.vectors(A, [f])[1][0]))
    assert found[0].face_id == best  # the person's best face, with its cosine similarity
    assert len(gallery.search(A, query, 50)) == 6  # k above the gallery: everyone once
    with pytest.raises(ServiceError) as unknown:
        gallery.search("other@3/embedding", query, 3)
    assert unknown.value.code == Code.UNKNOWN_MODEL


def test_faces_listing_images_and_version(open_backend):
    gallery = Gallery(open_backend(), {A: 16})
    first, second = face(1), face(2)
    version = gallery.version()
    person = gallery.add_person("Ann", {"contact": "x"}, [first])
    assert gallery.version() > version
    person = gallery.add_faces(person["id"], [second])
    assert [f["box"] for f in person["faces"]] == [[1.0, 2.0, 3.0, 4.0]] * 2
    face_id = person["faces"][1]["id"]
    assert gallery.face_image(person["id"], face_id) == second.thumbnail
    crop = gallery.face_image(person["id"], face_id, "crop")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(crop))), second.crop)  # lossless PNG
    assert gallery.face_image("someone-else", face_id) is None
    with pytest.raises(ServiceError) as missing:
        gallery.add_faces("nobody", [face(3)])
    assert missing.value.code == Code.NOT_FOUND
    gallery.add_person("Bob", {}, [face(4)])
    page, total = gallery.list_persons(0, 1)
    assert total == 2 and [p["name"] for p in page] == ["Ann"] and len(page[0]["faces"]) == 2
    stats = gallery.stats()
    assert stats["persons"] == 2 and stats["faces"] == 3 and stats["spaces"] == {A: 3}
    assert stats["backend"] == open_backend.kind
    assert gallery.size() == (2, gallery.version())
    gallery.delete_person(page[0]["id"])
    assert gallery.size() == (1, gallery.version())  # counted again after a change


def test_another_process_sees_writes_at_once_and_never_a_deleted_face(open_backend):
    writer, reader = Gallery(open_backend(), {A: 16}), Gallery(open_backend(), {A: 16})
    kept = writer.add_person("Kept", {}, [face(1)])
    gone = writer.add_person("Gone", {}, [face(2), face(3)])
    assert reader.search(A, face(2).vectors[A], 1)[0].person_id == gone["id"]  # no wait, no retry
    two_faces = writer.add_person("Two", {}, [face(4), face(5, near=face(4).vectors[A])])
    writer.delete_face(two_faces["id"], two_faces["faces"][0]["id"])
    hit = reader.search(A, face(4).vectors[A], 1)[0]
    assert hit.person_id == two_faces["id"] and hit.face_id == two_faces["faces"][1]["id"]
    erasure = writer.delete_person(gone["id"])
    assert erasure["faces"] == erasure["crops"] == erasure["thumbnails"] == 2 and erasure["vectors"] == 2
    for probe in (face(2), face(3)):
        assert gone["id"] not in {m.person_id for m in reader.search(A, probe.vectors[A], 10)}
    assert reader.get_person(gone["id"]) is None and reader.get_person(kept["id"])["name"] == "Kept"
    assert writer.delete_person(gone["id"])["already_deleted"] is True
    assert writer.delete_person("never-enrolled") is None
    assert writer.delete_face(kept["id"], 10**9) is None


def test_another_model_is_refused_until_reembedded(open_backend):
    old = Gallery(open_backend(), {A: 16})
    person = old.add_person("Old", {}, [face(1), face(2)])
    with pytest.raises(ServiceError) as refused:
        Gallery(open_backend(), {A: 16, B: 8})
    assert refused.value.code == Code.MODEL_MISMATCH and "reembed" in refused.value.message
    reembedding = Gallery(open_backend(), {A: 16, B: 8}, verify=False)
    missing = reembedding.faces_missing(B)
    assert sorted(missing) == [f["id"] for f in person["faces"]]
    crops = {f: np.asarray(Image.open(io.BytesIO(reembedding.crop(t)))) for f, t in missing.items()}
    assert np.array_equal(crops[person["faces"][0]["id"]], face(1).crop)
    new = {f: np.random.default_rng(f).normal(size=8) for f in missing}  # "the new model's vectors"
    reembedding.set_vectors(B, new)
    served = Gallery(open_backend(), {A: 16, B: 8})  # the guard passes now
    target = person["faces"][1]["id"]
    hit = served.search(B, new[target], 1)[0]
    assert hit.person_id == person["id"] and hit.face_id == target and hit.similarity > 0.999


def test_a_search_index_that_missed_writes_is_repaired(open_backend):
    """Writes committed to the truth without reaching the search index (a process killed between the two
    steps) are found by the next search of any process, and a full repair rebuilds the index."""
    gallery = Gallery(open_backend(), {A: 16})
    gallery.add_person("Seen", {}, [face(1)])
    crashed, unseen = gallery.files.write([face(2)]), face(2)  # step 1 of add_person, then the commit only
    gallery.metadata.add_person("f" * 16, "Committed", {}, [unseen], crashed)
    other = Gallery(open_backend(), {A: 16})
    assert other.search(A, unseen.vectors[A], 1)[0].name == "Committed"
    assert gallery.search(A, unseen.vectors[A], 1)[0].name == "Committed"
    assert gallery.repair() == {A: 2}
    assert [m.name for m in gallery.search(A, unseen.vectors[A], 2)] == ["Committed", "Seen"]
