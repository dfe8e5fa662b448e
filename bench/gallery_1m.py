"""The gallery's index at 1M faces: which FAISS index, with which parameters, finds the exact top 5 (recall@5
>= 0.99 against exact search) at p50 <= 5 ms per query on 2 cores; its memory and build time; and whether
adds and deletions stay correct. Not part of `make bench` (about 8 GiB and an hour): `make bench-gallery-1m`.

Vectors are real-shaped, not uniform: real aligned faces are embedded by the served model as the server does
it (ONNX Runtime, flip TTA), and their statistics (the mean face, the spread of identity means and of faces
around their identity's mean, full 512x512 covariances) generate 1M gallery faces of persons with 1 to 5
faces each; queries are new faces of enrolled persons. The output first compares real and generated
vectors (same-person and different-person cosines, the variance in the top principal components).
Usage: nice -n 5 python bench/gallery_1m.py [--faces 1000000] [--real 12000] [--queries 300]
"""

import argparse
import os
import time

import faiss
import numpy as np
from PIL import Image

from ai_server.core.weights import default_weights_dir, load_manifest
from ai_server.research import data
from ai_server.serving.pipeline.runtime import ServedModel, face_vectors

K = 5
THREADS = faiss.omp_get_max_threads()  # builds use every core; searches one (see timed_search)


def real_embeddings(n: int, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (n, D), identity labels) of the first `n` celeba_ext faces of identities with >= 3."""
    root = data.data_dir() / "faces112" / "celeba_ext"
    paths, labels = [], []
    for label, person in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        files = sorted(person.glob("*.jpg"))
        if len(files) >= 3:
            paths += files
            labels += [label] * len(files)
        if len(paths) >= n:
            break
    weights = default_weights_dir()
    manifest = load_manifest(weights)
    model = ServedModel(weights, manifest, manifest["default"], threads=2)
    out = []
    for start in range(0, len(paths), batch):
        faces = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths[start : start + batch]])
        out.append(face_vectors(model, faces).embedding)
    return np.concatenate(out).astype(np.float32), np.array(labels)


def statistics(vectors: np.ndarray, labels: np.ndarray):
    """Mean, identity-mean covariance root and within-identity covariance root (eigendecompositions)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    means = np.stack([vectors[inverse == i].mean(0) for i in range(len(ids))])
    residual = vectors - means[inverse]
    roots = []
    for sample in (means, residual):
        values, vecs = np.linalg.eigh(np.cov(sample, rowvar=False))
        roots.append((vecs * np.sqrt(np.clip(values, 0, None))).T.astype(np.float32))
    return means.mean(0).astype(np.float32), roots[0], roots[1]


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def generate(n: int, stats, rng: np.random.Generator, chunk: int = 50_000):
    """(faces (n, D) unit, owner per face, centres of the persons): 1-5 faces per person."""
    mean, between, within = stats
    per = rng.integers(1, 6, size=n)  # more persons than needed; cut at n faces
    owner = np.repeat(np.arange(len(per)), per)[:n]
    persons = int(owner[-1]) + 1
    centres = mean + rng.standard_normal((persons, len(mean)), dtype=np.float32) @ between
    faces = np.empty((n, len(mean)), np.float32)
    for start in range(0, n, chunk):
        part = owner[start : start + chunk]
        noise = rng.standard_normal((len(part), len(mean)), dtype=np.float32) @ within
        faces[start : start + len(part)] = normalised(centres[part] + noise)
    return faces, owner, centres


def shape_report(name: str, vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> str:
    """Same-person and different-person cosine medians, and the variance share of the top components."""
    idx = rng.choice(len(vectors), size=min(len(vectors), 20_000), replace=False)
    v, lab = vectors[idx], labels[idx]
    m = min(2000, len(v))
    sims = v[:m] @ v.T
    same = (lab[:m, None] == lab[None]) & ~np.eye(m, len(v), dtype=bool)
    values = np.linalg.eigvalsh(np.cov(v, rowvar=False))[::-1]
    share = np.cumsum(values) / values.sum()
    return (
        f"{name:<10} same-person cos median {np.median(sims[same]):.3f}, different-person "
        f"{np.median(sims[~same]):.3f} (p99 {np.percentile(sims[~same], 99):.3f}); "
        f"variance in top 10 / 50 components {share[9]:.2f} / {share[49]:.2f}"
    )


def exact_top(faces: np.ndarray, queries: np.ndarray, alive: np.ndarray | None = None) -> np.ndarray:
    """The exact top K ids per query by brute force (chunks), ignoring ids where `alive` is False."""
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.zeros((len(queries), K), np.int64)
    for start in range(0, len(faces), 100_000):
        s = queries @ faces[start : start + 100_000].T
        if alive is not None:
            s[:, ~alive[start : start + 100_000]] = -np.inf
        top = np.argpartition(-s, K, axis=1)[:, :K]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + start], 1)
        order = np.argsort(-cand_s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def timed_search(index, queries: np.ndarray) -> tuple[np.ndarray, dict]:
    """Top-K ids per query, one query at a time, and the p50/p95 of wall and of this thread's CPU time
    (a search runs on the calling thread; on a busy machine its CPU time is what a quiet core would take)."""
    wall, cpu, found = [], [], []
    faiss.omp_set_num_threads(1)  # as the gallery searches: one query per call, requests side by side
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        _, ids = index.search(q[None], K)
        cpu.append(1000 * (time.thread_time() - c))
        wall.append(1000 * (time.perf_counter() - t))
        found.append(ids[0][:K])
    faiss.omp_set_num_threads(THREADS)
    pct = {
        f"{name}{p}": float(np.percentile(v, p))
        for name, v in (("wall", wall), ("cpu", cpu))
        for p in (50, 95)
    }
    return np.array(found), pct


HEADER = (
    f"{'index':<26} {'build s':>8} {'MiB':>8} {'search':>12} {'wall p50':>8} {'p95':>6} {'cpu p50':>8} "
    f"{'p95':>6} recall@5"
)


def _times(t: dict) -> str:
    return f"{t['wall50']:8.2f} {t['wall95']:6.2f} {t['cpu50']:8.2f} {t['cpu95']:6.2f}"


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def build(kind: str, faces: np.ndarray, param: int, rng: np.random.Generator):
    """(index, wall seconds, CPU seconds of all threads) for `hnsw` (M=32, efConstruction=`param`) or
    `ivf` (nlist=`param`); the CPU time is what the build costs, whatever else runs beside it."""
    dim, started, cpu = faces.shape[1], time.perf_counter(), time.process_time()
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = param
        index = faiss.IndexIDMap2(index)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, param, faiss.METRIC_INNER_PRODUCT)
        index.train(faces[rng.choice(len(faces), size=min(len(faces), 64 * param), replace=False)])
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids without scanning every list
    for start in range(0, len(faces), 100_000):
        index.add_with_ids(
            faces[start : start + 100_000], np.arange(start, start + len(faces[start : start + 100_000]))
        )
    return index, time.perf_counter() - started, time.process_time() - cpu


def set_breadth(index, kind: str, value: int) -> None:
    if kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = value
    else:
        index.nprobe = value


def churn(
    index, kind: str, faces: np.ndarray, queries: np.ndarray, breadth: int, rng: np.random.Generator
) -> str:
    """Delete 1% of the faces and add 10,000 new ones; deleted ids must never come back, each new face
    must find itself first, and recall against exact search on the changed gallery must hold. IVF removes
    the ids; HNSW cannot, so its search skips them (an ID selector while walking the graph)."""
    n = len(faces)
    gone = rng.choice(n, size=n // 100, replace=False).astype(np.int64)
    alive = np.ones(n + 10_000, bool)
    alive[gone] = False
    noise = 0.3 * rng.standard_normal((10_000, faces.shape[1]), dtype=np.float32)
    new = normalised(faces[rng.choice(n, 10_000)] + noise)
    started = time.perf_counter()
    params = None
    if kind == "ivf":
        index.remove_ids(gone)
    else:
        params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorNot(faiss.IDSelectorBatch(gone)))
    index.add_with_ids(new, np.arange(n, n + 10_000))
    seconds = time.perf_counter() - started
    set_breadth(index, kind, breadth)
    if params is not None:
        params.efSearch = breadth
    found = np.stack([index.search(q[None], K, params=params)[1][0] for q in queries])
    exact = exact_top(np.concatenate([faces, new]), queries, alive)
    _, self_ids = index.search(new[:200], 1, params=params)
    returned_deleted = int(np.isin(found, gone).sum())
    return (
        f"{kind}: deleted {len(gone):,} and added 10,000 in {seconds:.1f} s; deleted ids returned: "
        f"{returned_deleted}; new faces found first: {np.mean(self_ids[:, 0] == np.arange(n, n + 200)):.3f}; "
        f"recall@5 after: {recall(found, exact):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=12_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--hnsw-ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", type=int, nargs="*", default=[64, 128, 256, 512])
    parser.add_argument("--nlist", type=int, nargs="*", default=[1024])
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 16, 32, 64, 128])
    parser.add_argument("--skip-hnsw", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    started, load = time.perf_counter(), os.getloadavg()[0]
    real, labels = real_embeddings(args.real)
    stats = statistics(real, labels)
    faces, owner, centres = generate(args.faces, stats, rng)
    picked = rng.integers(0, owner[-1] + 1, args.queries)
    queries = normalised(
        centres[picked] + rng.standard_normal((args.queries, faces.shape[1]), dtype=np.float32) @ stats[2]
    )
    print(f"faiss {faiss.__version__}, builds on {THREADS} threads, searches on 1, one query at a time, "
          f"k={K}; {args.faces:,} faces x {faces.shape[1]}-d from {len(real):,} real faces of "
          f"{len(np.unique(labels)):,} identities ({time.perf_counter() - started:.0f} s)")  # fmt: skip
    print(shape_report("real", real, labels, rng))
    print(shape_report("generated", faces, owner, rng))
    exact = exact_top(faces, queries)
    flat = faiss.IndexFlatIP(faces.shape[1])
    flat.add(faces)
    _, t = timed_search(flat, queries[:50])
    print(f"\n{HEADER}")
    print(f"{'flat (exact)':<26} {0:8.1f} {faces.nbytes / 2**20:8.0f} {'-':>12} {_times(t)} 1.0000")
    del flat
    plans = [("ivf", nlist, "nprobe", args.nprobe) for nlist in args.nlist]
    if not args.skip_hnsw:
        plans.append(("hnsw", args.hnsw_ef_construction, "efSearch", args.ef_search))
    churned = []
    for kind, param, knob, values in plans:
        index, seconds, cpu = build(kind, faces, param, rng)
        memory = len(faiss.serialize_index(index)) / 2**20
        label = f"{kind} M=32 efConstruction={param}" if kind == "hnsw" else f"ivf-flat nlist={param}"
        best = None
        for value in values:
            set_breadth(index, kind, value)
            found, t = timed_search(index, queries)
            r = recall(found, exact)
            print(
                f"{label:<26} {seconds:8.1f} {memory:8.0f} {f'{knob}={value}':>12} {_times(t)} {r:.4f}",
                flush=True,
            )
            if best is None and r >= 0.99:
                best = value
        print(f"{'':<26} built in {seconds:.0f} s wall, {cpu:.0f} s CPU (all threads)", flush=True)
        churned.append(churn(index, kind, faces, queries, best or values[-1], rng))
        del index
    print("\nAdds and deletions (at the first setting with recall@5 >= 0.99):")
    for line in churned:
        print("  " + line)
    print(f"\n{(time.perf_counter() - started) / 60:.0f} minutes in all; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")  # fmt: skip


if __name__ == "__main__":
    main()
