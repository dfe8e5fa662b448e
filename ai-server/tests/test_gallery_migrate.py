"""`ai-server gallery migrate` from a populated embedded gallery (SQLite + files + FAISS) into PostgreSQL +
Milvus loses nothing: the same persons, faces and ids, every space's vectors (within 1e-6), the same
crops and thumbnails, the same search results; running it again copies nothing twice. Then
`ai-server gallery repair` rebuilds a Milvus that lost a collection."""

import json

import numpy as np

from ai_server.cli import main
from ai_server.serving.gallery import Gallery, NewFace, backends

SPACES = {"m@1/embedding": 16, "m@1/heatmap_vector": 24}


def _populate(gallery: Gallery, persons: int) -> list[dict]:
    rng = np.random.default_rng(7)
    enrolled = []
    for i in range(persons):
        centre = {space: rng.normal(size=dim) for space, dim in SPACES.items()}
        faces = [
            NewFace(
                rng.integers(0, 255, (112, 112, 3), dtype=np.uint8),
                b"\xff\xd8" + rng.bytes(200),
                {space: c + 0.3 * rng.normal(size=c.shape) for space, c in centre.items()},
                [float(i), 0.0, 112.0, 112.0],
                0.9,
            )
            for _ in range(int(rng.integers(1, 4)))
        ]
        enrolled.append(gallery.add_person(f"Person {i}", {"case": i}, faces))
    return enrolled


def _search_all(gallery: Gallery, queries: dict[str, np.ndarray]) -> list:
    return [
        [(m.person_id, m.face_id, m.name, round(m.similarity, 5)) for m in gallery.search(space, q, 5)]
        for space, qs in queries.items()
        for q in qs
    ]


def test_migration_loses_nothing(tmp_path, shared_location, capsys, monkeypatch):
    source = Gallery.embedded(tmp_path / "gallery", SPACES, index_kind="flat")
    enrolled = _populate(source, 40)
    source.delete_person(enrolled[3]["id"])  # an erased id travels too
    rng = np.random.default_rng(1)
    queries = {space: rng.normal(size=(8, dim)) for space, dim in SPACES.items()}
    expected = _search_all(source, queries)
    url, uri = shared_location["postgres_url"], shared_location["milvus_uri"]
    monkeypatch.setenv("AI_SERVER_INDEX", "flat")  # exact search on both sides: equal results
    command = ["gallery", "migrate", "--data-dir", str(tmp_path / "gallery"), "--to-postgres", url]
    assert main([*command, "--to-milvus", uri]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["persons_copied"] == 39 and report["persons"] == 39
    assert report["milvus"] == {space: report["faces"] for space in SPACES}

    target = Gallery(backends.shared(url, uri, "flat"), SPACES)
    try:
        before, after = source.stats(), target.stats()
        assert [after[k] for k in ("persons", "faces", "spaces")] == [
            before[k] for k in ("persons", "faces", "spaces")
        ]
        for space in SPACES:
            ids, vectors = source.metadata.vectors(space)
            copied_ids, copied = target.metadata.vectors(space)
            assert np.array_equal(np.sort(ids), copied_ids)
            assert np.abs(vectors[np.argsort(ids)] - copied).max() <= 1e-6
        for person in source.list_persons(0, 100)[0]:
            assert target.get_person(person["id"]) == person
            for f in person["faces"]:
                for kind in ("crop", "thumbnail"):
                    assert target.face_image(person["id"], f["id"], kind) == source.face_image(
                        person["id"], f["id"], kind
                    )
        assert _search_all(target, queries) == expected
        assert target.delete_person(enrolled[3]["id"])["already_deleted"] is True
        assert main([*command, "--to-milvus", uri]) == 0  # again: nothing copied twice
        assert json.loads(capsys.readouterr().out)["persons_copied"] == 0
        assert target.stats()["faces"] == source.stats()["faces"]

        target.index.client.drop_collection(target.index.collections["m@1/embedding"])  # Milvus lost it
        monkeypatch.setenv("AI_SERVER_POSTGRES_URL", url)
        monkeypatch.setenv("AI_SERVER_MILVUS_URI", uri)
        assert main(["gallery", "repair"]) == 0
        assert json.loads(capsys.readouterr().out)["rebuilt"] == report["milvus"]
        assert _search_all(target, queries) == expected
    finally:
        target.close()
