"""Search latency of the two gallery backends side by side, in the same run: embedded (SQLite + FAISS, as
one gunicorn worker holds it) and shared (PostgreSQL + Milvus: here a throwaway PostgreSQL cluster and
milvus-lite's server, both on this machine), at 10k and 100k faces. Timed is `Gallery.search`, the call
/v1/match makes after embedding: the index search and the result check against the truth, per person top 5.

Vectors are real-shaped (bench/gallery_1m.py): real aligned faces embedded by the served model give the
statistics that generate the gallery (1-5 faces per person) and the queries (new faces of enrolled
persons). The galleries are loaded through the stores directly (one transaction per batch, 1x1 crops, no
crop files): loading is not what is measured. milvus-lite is not Milvus Standalone (a Python server, one
process): its numbers bound what the shared path costs here, not what a Milvus cluster would do.
Not part of `make test` or `make bench`. Usage:
    python bench/gallery_backends.py [--sizes 10000,100000] [--queries 200] [--real 600]
"""

import argparse
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from gallery_1m import generate, real_embeddings, statistics  # same folder: the real-shaped vectors
from testkit.milvus import MilvusLite
from testkit.postgres import PostgresCluster

from ai_server.serving.gallery import Gallery, NewFace, backends
from ai_server.serving.gallery.metadata import _insert_faces

SPACE = "bench@1/embedding"
K = 5
BATCH = 2000  # persons per transaction while loading


def machine_load(label: str) -> str:
    """Load averages and the busiest processes (this machine also trains models: say so)."""
    one, five, fifteen = os.getloadavg()
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True)
    busiest = ", ".join(" ".join(line.split()) for line in top.stdout.splitlines()[1:4])
    return f"load {label}: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores; busiest: {busiest}"


def people(faces: np.ndarray, owner: np.ndarray) -> list[tuple[str, list[NewFace]]]:
    crop = np.zeros((1, 1, 3), np.uint8)
    grouped: dict[int, list[NewFace]] = {}
    for vector, person in zip(faces, owner.tolist(), strict=True):
        grouped.setdefault(person, []).append(NewFace(crop, b"\xff\xd8", {SPACE: vector}, [0, 0, 1, 1], 1.0))
    return [(secrets.token_hex(8), fs) for fs in grouped.values()]


def load_embedded(root: Path, persons) -> Gallery:
    backend = backends.embedded(root)
    store = backend.metadata
    for start in range(0, len(persons), BATCH):
        with store.transaction() as db:
            for person_id, fs in persons[start : start + BATCH]:
                db.execute(
                    "INSERT INTO persons (id, name, metadata, created_at) VALUES (?, ?, '{}', ?)",
                    (person_id, person_id, time.time()),
                )
                _insert_faces(db, person_id, fs, [secrets.token_hex(16) for _ in fs])
    return Gallery(backend, {SPACE: persons[0][1][0].vectors[SPACE].shape[0]})


def load_shared(url: str, uri: str, persons) -> Gallery:
    backend = backends.shared(url, uri)
    dim = persons[0][1][0].vectors[SPACE].shape[0]
    face_id = 0
    for start in range(0, len(persons), BATCH):
        batch = []
        for person_id, fs in persons[start : start + BATCH]:
            rows = []
            for f in fs:
                face_id += 1
                vector = f.vectors[SPACE].astype(np.float32).tobytes()
                rows.append(
                    {
                        "id": face_id,
                        "token": secrets.token_hex(16),
                        "box": [0, 0, 1, 1],
                        "detection_score": 1.0,
                    }
                    | {
                        "created_at": time.time(),
                        "crop": b"png",
                        "thumbnail": b"jpg",
                        "vectors": {SPACE: vector},
                    }
                )
            batch.append({"id": person_id, "name": person_id, "metadata": {}, "created_at": time.time()})
            batch[-1]["faces"] = rows
        backend.metadata.copy_in(batch)
    return Gallery(backend, {SPACE: dim})  # Milvus is filled from PostgreSQL as it opens (a repair)


def timed(gallery: Gallery, queries: np.ndarray, truth: np.ndarray, person_of: dict) -> dict:
    for q in queries[:10]:  # warm up
        gallery.search(SPACE, q, K)
    times, hits = [], 0
    for q, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = gallery.search(SPACE, q, K)
        times.append((time.perf_counter() - started) * 1000)
        hits += any(person_of.get(m.person_id) == expected for m in found[:1])
    ms = np.array(times)
    return {"p50": np.percentile(ms, 50), "p95": np.percentile(ms, 95), "top1": hits / len(queries)}


def run_size(n: int, stats, args, cluster: PostgresCluster, milvus: MilvusLite, scratch: Path) -> dict:
    rng = np.random.default_rng(n)
    faces, owner, centres = generate(n, stats, rng)
    persons = people(faces, owner)
    person_of = {pid: i for i, (pid, _) in enumerate(persons)}
    _, between, within = stats
    truth = rng.integers(0, len(persons), size=args.queries)
    noise = rng.standard_normal((args.queries, faces.shape[1]), dtype=np.float32) @ within
    queries = centres[truth] + noise
    results = {}
    started = time.perf_counter()
    embedded = load_embedded(scratch / f"embedded-{n}", persons)
    results["embedded"] = {
        **timed(embedded, queries, truth, person_of),
        "load_s": time.perf_counter() - started,
    }
    results["embedded"]["index"] = embedded.stats()["index"][SPACE]
    embedded.close()
    started = time.perf_counter()
    with cluster.database(f"bench{n}") as url:
        shared = load_shared(url, milvus.uri, persons)
        results["shared"] = {
            **timed(shared, queries, truth, person_of),
            "load_s": time.perf_counter() - started,
        }
        results["shared"]["index"] = shared.stats()["index"][SPACE]
        shared.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", type=int, default=600, help="real faces embedded for the statistics")
    args = parser.parse_args()
    print(machine_load("before"), flush=True)
    vectors, labels = real_embeddings(args.real)
    stats = statistics(vectors, labels)
    print(f"statistics from {len(vectors)} real faces of {len(set(labels))} identities, {vectors.shape[1]}-d")
    cluster = PostgresCluster().start()
    try:
        with tempfile.TemporaryDirectory() as tmp, MilvusLite(Path(tmp) / "milvus") as milvus:
            for n in (int(s) for s in args.sizes.split(",")):
                result = run_size(n, stats, args, cluster, milvus, Path(tmp))
                for name, r in result.items():
                    latency = f"p50 {r['p50']:7.2f} ms  p95 {r['p95']:7.2f} ms"
                    print(
                        f"{n:>7} faces  {name:<8} {r['index']:<16} {latency}  top-1 {r['top1']:.3f}"
                        f"  (loaded in {r['load_s']:.0f} s)",
                        flush=True,
                    )
    finally:
        cluster.stop()
    print(machine_load("after"))


if __name__ == "__main__":
    main()
