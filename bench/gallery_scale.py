"""Gallery search at scale: exact flat inner product vs HNSW, the two index kinds the gallery uses.

Synthetic, clustered unit vectors (people with several noisy faces each, queries near a person) stand in
for embeddings; the 16,384-d heatmap vector of the paper is measured at the sizes that fit in memory.
Prints, per size: build time, index memory, search p50/p95 for one query, and HNSW recall@5 against the
exact search. Usage: python bench/gallery_scale.py [--sizes 10000 100000 1000000] [--queries 200]
"""

import argparse
import time

import faiss
import numpy as np

from ai_server.serving.gallery.index import VectorIndex


def clustered(n: int, dim: int, rng: np.random.Generator, faces_per_person: int = 3):
    people = rng.normal(size=(n // faces_per_person + 1, dim)).astype(np.float32)
    owner = np.arange(n) // faces_per_person
    vectors = people[owner] + 0.8 * rng.normal(size=(n, dim)).astype(np.float32)
    return people, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _queries(people: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    picked = people[rng.integers(0, len(people), count)]
    q = picked + 0.8 * rng.normal(size=picked.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def run(kind: str, vectors: np.ndarray, queries: np.ndarray, k: int = 5, ef_search: int | None = None):
    started = time.perf_counter()
    index = VectorIndex(vectors.shape[1], kind)
    for start in range(0, len(vectors), 50_000):
        chunk = vectors[start : start + 50_000]
        index.add(np.arange(start, start + len(chunk)), chunk)
    build = time.perf_counter() - started
    if ef_search:  # the search-time breadth of HNSW: recall against latency
        faiss.downcast_index(index.index.index).hnsw.efSearch = ef_search
    memory = len(faiss.serialize_index(index.index)) / 2**20
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q, k)
        times.append(1000 * (time.perf_counter() - t))
        found.append(ids[:k])
    return build, memory, np.percentile(times, 50), np.percentile(times, 95), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--heatmap-sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--ef-search", type=int, nargs="*", default=[], help="also HNSW at these efSearch")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, one query at a time, k=5")
    header = "dim      size  index     build s  memory MiB  p50 ms  p95 ms  recall@5 vs flat"
    print(header)
    cases = [(512, n) for n in args.sizes] + [(128 * 128, n) for n in args.heatmap_sizes]
    for dim, n in cases:
        people, vectors = clustered(n, dim, rng)
        queries = _queries(people, args.queries, rng)
        exact = None
        variants = [("flat", None), ("hnsw", None)] + [("hnsw", ef) for ef in args.ef_search]
        for kind, ef in variants:
            build, memory, p50, p95, found = run(kind, vectors, queries, ef_search=ef)
            if kind == "flat":
                exact, recall = found, "-"
            else:
                hits = [len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]
                recall = f"{np.mean(hits):.4f}"
            print(
                f"{dim:<6} {n:>8}  {kind:<5} {build:8.1f}  {memory:10.0f}  {p50:6.2f}  {p95:6.2f}  {recall}"
            )
        del vectors


if __name__ == "__main__":
    main()
