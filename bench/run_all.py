"""`make bench`: every benchmark against its baseline, one after the other, then docs/benchmarks.md (their
output, verbatim, under the hardware, the load and the commit) and docs/figures/bench_*.png.

Each script runs its own baseline in the same process or the same run, so the ratios hold even on a
busy machine; the absolute numbers do not. Usage:
    .venv/bin/python bench/run_all.py [--threads 2] [--quick]
--quick: shorter wrk runs and match_latency, no 16,384-d gallery (its HNSW build alone takes minutes).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
THREADS_NOTE = """ One thread, not two: with 2 threads on the loaded 2-core machine torch's worker threads
wait for each other behind the other jobs and every path became 50-100x slower (a 2-thread trial on 4 photos,
2026-11-26: baseline 7.8 s, ours 3.7 s, ours + ONNX Runtime 2.0 s per image; baseline/ours 2.1x at batch 1,
3.7x batched, the same direction as below). On a quiet machine run `make bench` (2 threads)."""
DOC = ROOT / "docs" / "benchmarks.md"
FIGURES = ROOT / "docs" / "figures"


def run(script: str, *args) -> tuple[str, float]:
    started = time.perf_counter()
    command = [sys.executable, str(ROOT / "bench" / script), *map(str, args)]
    print("$", " ".join(command[1:]), flush=True)
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(f"{script} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip(), time.perf_counter() - started


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "bench"], capture_output=True, text=True, cwd=ROOT
    )
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}; commit {commit.stdout.strip()}"
        f"{' (bench/ modified)' if dirty.stdout.strip() else ''}"
    )


def plot_pipeline(result: dict) -> None:
    names = list(result["batch1"])
    b1 = [result["batch1"][n]["p50"] for n in names]
    bt = [result["batched_ms_per_image"].get(n, 0) for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], b1, 0.4, label="batch 1, p50 ms")
    ax.bar([x + 0.2 for x in xs], bt, 0.4, label=f"batch of {result['photos']}, ms per image")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ms per image (lower is better)")
    ax.set_title(f"Per-request inference, {result['threads']} thread(s), same photos, same run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "bench_pipeline.png", dpi=110)


def plot_wrk(runs: list[dict]) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for target in ("gateway", "ai-server direct"):
        rows = [r for r in runs if r["target"] == target]
        c = [r["connections"] for r in rows]
        left.plot(c, [r["rps"] for r in rows], "o-", label=target)
        right.plot(c, [r["p50_us"] / 1e3 for r in rows], "o-", label=f"{target} p50")
        right.plot(c, [r["p99_us"] / 1e3 for r in rows], "o--", label=f"{target} p99")
    left.set(xscale="log", xlabel="connections", ylabel="requests/s", title="/v1/match throughput")
    right.set(xscale="log", yscale="log", xlabel="connections", ylabel="ms", title="latency")
    left.legend()
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURES / "bench_wrk.png", dpi=110)


def gallery_rows(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(\d+)\s+(\d+)\s+(flat|hnsw)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)", line)
        if m:
            dim, n, kind, build, mem, p50, p95, recall = m.groups()
            numbers = {
                "build_s": float(build),
                "memory_mib": float(mem),
                "p50": float(p50),
                "p95": float(p95),
            }
            rows.append({"dim": int(dim), "n": int(n), "kind": kind, "recall": recall, **numbers})
    return rows


def plot_gallery(rows: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for dim in sorted({r["dim"] for r in rows}):
        for kind in ("flat", "hnsw"):
            pts = [r for r in rows if r["dim"] == dim and r["kind"] == kind]
            if pts:
                ax.plot([r["n"] for r in pts], [r["p50"] for r in pts], "o-", label=f"{dim}-d {kind}")
    ax.set(xscale="log", yscale="log", xlabel="faces in the gallery", ylabel="search p50 ms (one query)")
    ax.set_title("Gallery search: exact flat vs HNSW, same vectors")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "bench_gallery.png", dpi=110)


def measure(args, tmp: Path) -> dict:
    """Run every bench; everything the document needs, as JSON-able data."""
    load_before, started = os.getloadavg(), time.time()
    q = args.quick
    out, secs = {}, {}
    out["pipeline"], secs["pipeline"] = run("pipeline_bench.py", "--threads", args.threads, "--photos", 16,
                                            "--rounds", 3, "--json", tmp / "pipeline.json")  # fmt: skip
    out["wrk"], secs["wrk"] = run("wrk_match.py", "--seconds", 8 if q else 15, "--json", tmp / "wrk.json")
    out["overhead"], secs["overhead"] = run("gateway_overhead.py", "--photos", 30, "--rounds", 3)
    out["latency"], secs["latency"] = run("match_latency.py", "--queries", 30 if q else 60)
    heat = [] if q else [10_000]
    out["scale"], secs["scale"] = run("gallery_scale.py", "--sizes", 10_000, 100_000, "--queries", 200,
                                      "--heatmap-sizes", *heat)  # fmt: skip
    out["enrol"], secs["enrol"] = run("enrol_throughput.py", "--threads", args.threads, "--per-person", 3)
    return {
        "outputs": out,
        "seconds": secs,
        "pipeline": json.loads((tmp / "pipeline.json").read_text()),
        "wrk": json.loads((tmp / "wrk.json").read_text()),
        "load": [load_before[0], os.getloadavg()[0]],
        "minutes": (time.time() - started) / 60,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        "machine": machine(),
        "quick": q,
        "threads": args.threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render", help="only rewrite the document from a saved run (its results.json)")
    args = parser.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        saved = measure(args, tmp)
        (tmp / "results.json").write_text(json.dumps(saved, indent=1))
        print(f"raw results: {tmp / 'results.json'} (bench/run_all.py --render it after editing the text)")
    render(saved)


def render(saved: dict) -> None:
    out, secs, p, w = saved["outputs"], saved["seconds"], saved["pipeline"], saved["wrk"]
    pipeline, wrk, overhead, latency, scale, enrol = (
        out[k] for k in ("pipeline", "wrk", "overhead", "latency", "scale", "enrol")
    )
    t1, t2, t3, t4, t5, t6 = (secs[k] for k in ("pipeline", "wrk", "overhead", "latency", "scale", "enrol"))
    q, threads, minutes = saved["quick"], saved["threads"], saved["minutes"]
    g = gallery_rows(scale)
    plot_pipeline(p)
    plot_wrk(w)
    plot_gallery(g)

    b1, bt = p["batch1"], p["batched_ms_per_image"]
    gw1 = next(r for r in w if r["target"] == "gateway" and r["connections"] == 1)
    direct1 = next(r for r in w if r["target"] == "ai-server direct" and r["connections"] == 1)
    gw8 = next(r for r in w if r["target"] == "gateway" and r["connections"] == 8)
    direct8 = next(r for r in w if r["target"] == "ai-server direct" and r["connections"] == 8)

    def paired(label: str) -> str:
        line = next(ln for ln in overhead.splitlines() if label in ln)
        return line.rsplit(":", 1)[1].strip().removesuffix(" ms")

    flat = {r["n"]: r for r in g if r["dim"] == 512 and r["kind"] == "flat"}
    hnsw = {r["n"]: r for r in g if r["dim"] == 512 and r["kind"] == "hnsw"}
    big = max(flat)
    over = next((r for r in w if r["target"].endswith("(overload)")), None)
    headline = [
        f"- **Our pipeline vs the paper's straightforward baseline** (pytorch-grad-cam + eager torch), same "
        f"photos: **{b1['baseline']['p50'] / b1['ours']['p50']:.2f}x** faster per request (p50, batch 1), "
        f"**{bt['baseline'] / bt['ours']:.2f}x** batched; with the Heatmap model's forward in ONNX Runtime "
        f"**{b1['baseline']['p50'] / b1['ours + ONNX Runtime']['p50']:.2f}x** / "
        f"**{bt['baseline'] / bt['ours + ONNX Runtime']:.2f}x**. Heatmaps equal to "
        f"{p['checks']['heatmap_max_abs_diff']:.0e}; ONNX Runtime embeddings cosine >= "
        f"{p['checks']['embedding_min_cosine_onnx_vs_torch']:.5f} vs torch.",
        f"- **Gateway overhead** (paired per photo, same run): **{paired('on a miss')} ms** for a cache miss "
        f"vs calling the ai-server directly, {paired('a cache hit vs')} ms for a cache hit. Under wrk "
        f"(separate, not interleaved runs, so noisier) p50 {gw1['p50_us'] / 1e3:.0f} ms through the gateway "
        f"vs {direct1['p50_us'] / 1e3:.0f} ms direct at 1 connection, {gw8['p50_us'] / 1e3:.0f} vs "
        f"{direct8['p50_us'] / 1e3:.0f} ms at 8.",
        f"- **HNSW vs exact flat** at {big:,} faces (512-d): p50 {hnsw[big]['p50']:.2f} ms vs "
        f"{flat[big]['p50']:.2f} ms (HNSW **{flat[big]['p50'] / max(hnsw[big]['p50'], 1e-9):.1f}x** faster), "
        "recall@5 "
        f"{hnsw[big]['recall']}; 1M was not run here (see section 4).",
    ]
    if over:
        clean = ("200", "503/overloaded", "429/rate_limited")
        others = {k: v for k, v in over["statuses"].items() if k not in clean}
        headline.append(
            f"- **Above saturation** ({over['connections']} connections): "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(over['statuses'].items()))}; "
            f"{'no other status' if not others else f'OTHER STATUSES {others}'}, "
            f"{int(over['err_timeout'])} timeouts."
        )
    DOC.write_text(
        f"""# Benchmarks

Regenerated by `make bench` (`bench/run_all.py{" --quick" if q else ""} --threads {threads}`) on
{saved["date"]} UTC, {minutes:.0f} minutes in all.

**Machine:** {saved["machine"]}.
**Load:** load average {saved["load"][0]:.1f} before and {saved["load"][1]:.1f} after. The development machine
has 2 cores and was running training and distillation jobs of other sessions the whole time, so absolute
times are upper bounds and vary several-fold between runs; read the ratios, which come from the same run
with the baseline alternating with ours. Every table below is a script's own output, pasted unchanged.

## Headlines

{chr(10).join(headline)}

## 1. Per-request inference: our pipeline vs the baseline

`bench/pipeline_bench.py` ({t1:.0f} s). Same JPEG bytes, same detector and aligner; baseline = Pillow
decode + pytorch-grad-cam `GradCAMPlusPlus` on the Base model + eager forward of the Heatmap model, one
image at a time, as the paper describes. Ours = the server's `Engine` without flip TTA (same work).
Threads: {threads}.{THREADS_NOTE if threads == 1 else ""}

{pipeline}

![pipeline](figures/bench_pipeline.png)

## 2. End to end: wrk against the gateway

`bench/wrk_match.py` ({t2:.0f} s). Gateway defaults (8 ai-server calls in flight, 64 waiting) except the
result cache (off: every request is a full match) and the per-key rate limit (out of the way). Up to 72
connections (8 in flight + 64 waiting) every answer must be a 200, however slow; above that (the last row)
only clean 503 `overloaded` (or 429) are allowed, never a timeout or a 500. Each run starts when the
gateway has nothing left waiting: a client that gives up does not cancel its request (aiohttp lets the
handler finish), so a run's abandoned requests would otherwise take queue places from the next run (this
is how a first version of this bench saw 503s at 64 connections).

{wrk}

![wrk](figures/bench_wrk.png)

## 3. Gateway overhead, paired

`bench/gateway_overhead.py` ({t3:.0f} s): direct, gateway miss, gateway hit for each photo, interleaved.

```
{overhead}
```

## 4. Gallery scale: exact flat vs HNSW

`bench/gallery_scale.py` ({t5:.0f} s), synthetic clustered unit vectors, one query at a time.
{"The 16,384-d heatmap vector was left out of this quick run; " if q else ""}At 16,384 dimensions a
face takes 64 KiB: 6.1 GiB per worker at 100k faces and 61 GiB at 1M, more than this machine has, which is
why the server searches the 512-d embedding (32x less memory and time). 1M x 512-d (2 GiB flat) was not
run: building HNSW over 100k already takes minutes on these cores and grows slightly faster than linearly;
flat search time grows linearly with the gallery (about 10x the 100k time at 1M) while HNSW grows with its
logarithm. On a loaded machine these millisecond searches mostly measure waiting for a core (faiss runs 2
OpenMP threads): p50s that sit on the same round value at every size (12.00 ms in the run of 2026-11-26)
are scheduler ticks, not search work; `docs/ai-server.md` has a calmer run (100k: flat 40 ms, HNSW 1.3 ms).

```
{scale}
```

![gallery](figures/bench_gallery.png)

## 5. Per-stage latency of /v1/match

`bench/match_latency.py` ({t4:.0f} s): the served model and ShuffleNetV2, with and without `explain`.

```
{latency}
```

## 6. Enrolment throughput

`bench/enrol_throughput.py` ({t6:.0f} s).

{enrol}

## 7. Reliability (not a benchmark: `make test-reliability`, part of `make test`, and `make soak`)

`tests/reliability/` runs a real gateway and ai-server on loopback, each data directory on its own small
tmpfs when one can be mounted (a real ENOSPC; the disk-full tests skip where it cannot, fail under CI=true):
a 52-file generated bad-input corpus through the gateway and straight at the ai-server (every answer its
documented 4xx or a correct 200: real faces in every form rank their own person first), multipart, `k` and
body-size abuse, auth on every operation of the OpenAPI file, SIGKILL of either service under load, and a
full disk under either data directory. Failures it found, each fixed with the test that found it:

- a 16-bit greyscale PNG of a face was decoded as white (`422 no_face_found`): `serving/pipeline/images.py`
  scales it to 8 bits;
- a 1x4000 image was a `500` (the detector resized a side to 0 px): sides more than 100x apart are now
  `400 invalid_image` (`serving/pipeline/images.py`);
- a client leaving mid-body was a gateway `500` (and counted as one): now `400 invalid_request`;
- a full disk was a `500` in the ai-server (a `502` through the gateway) and a `500` for the gateway's
  own photo write: both now answer `507 insufficient_storage` (passed through, in the OpenAPI file);
- on a full disk the gateway store's `ROLLBACK` after SQLite's own rollback raised and hid "database or
  disk is full": it rolls back only when a transaction is open.
- the gallery's file store left a partial `.tmp` behind when a write failed with anything but an
  `OSError`, and the files of the faces already written when a later one failed: `gallery/files.py` now
  removes both, whatever the error, and the test asserts no `.tmp` is left instead of deleting them;
- a grey 16-bit PNG of an enrolled person decodes like its 8-bit version but the served model does not
  rank that person first: a known model weakness, kept as a strict `xfail` test that fails once a model
  recognises the person.

Soak, 2026-11-26 (`make soak`, 600 s on this machine): 12,077 matches, 1,784 enrolments and 1,764
deletions through the gateway, no error; RSS 45 -> 47 MiB (gateway) and 939 -> 960 MiB (ai-server, 1
worker) with the growth in the first minutes; open descriptors flat (18-22 and 43); at the end the
gallery's persons and faces equal its database's and no deleted person was ever returned.

## Not measured here

- GPU training throughput (images/s per model, minutes for the full reproduction): needs the GPU machine.
- 1M-vector gallery (see section 4).
"""
    )
    print(f"wrote {DOC.relative_to(ROOT)} and docs/figures/bench_*.png")


if __name__ == "__main__":
    main()
