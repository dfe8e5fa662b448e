"""docs/benchmarks.md and docs/figures/bench_*.png from a `run_all.py` run (its saved results.json)."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
FIGURES = ROOT / "docs" / "figures"
PATHS = ("paper-style baseline", "previous server (torch)", "ours (ONNX Runtime)")
SECTIONS = ("pipeline", "detect", "footprint", "wrk", "overhead", "quota", "latency", "scale", "enrol")


def plot_pipeline(result: dict) -> None:
    names = list(result["batch1"])
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [result["batch1"][n]["p50"] for n in names], 0.4, label="batch 1, p50 ms")
    ax.bar([x + 0.2 for x in xs], [result["batched_ms_per_image"][n] for n in names], 0.4,
           label=f"batch of {result['photos']}, ms per image")  # fmt: skip
    ax.set_xticks(list(xs), names, fontsize=8)
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
        m = re.match(
            r"^(\d+)\s+(\d+)\s+(flat|hnsw|ivf)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)", line
        )
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
        for kind in ("flat", "hnsw", "ivf"):
            pts = [r for r in rows if r["dim"] == dim and r["kind"] == kind]
            if pts:
                ax.plot([r["n"] for r in pts], [r["p50"] for r in pts], "o-", label=f"{dim}-d {kind}")
    ax.set(xscale="log", yscale="log", xlabel="faces in the gallery", ylabel="search p50 ms (one query)")
    ax.set_title("Gallery search by index kind, same vectors")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "bench_gallery.png", dpi=110)


def million_rows(text: str) -> list[dict]:
    """The 1M benchmark's table: index, build s, MiB, setting, wall/cpu p50/p95, recall@5, and the build's
    CPU seconds from the "built in" line under each index's rows."""
    rows, cpu = [], {}
    pattern = r"^(.+?)\s{2,}([\d.]+)\s+(\d+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$"
    for line in text.splitlines():
        if m := re.match(pattern, line.strip()):
            name, build, mib, setting, w50, _, c50, _, recall = m.groups()
            row = {"index": name.strip(), "build_s": float(build), "mib": float(mib), "setting": setting}
            rows.append({**row, "wall_p50": float(w50), "cpu_p50": float(c50), "recall": float(recall)})
        elif (m := re.match(r"^built in (\d+) s wall, (\d+) s CPU", line.strip())) and rows:
            cpu[rows[-1]["index"]] = float(m.group(2))
    return [{**r, "build_cpu_s": cpu.get(r["index"])} for r in rows]


def million_headline(text: str) -> str:
    """Per index kind, its fastest setting with recall@5 >= 0.99 against exact search."""
    rows = [r for r in million_rows(text) if r["recall"] >= 0.99 and r["setting"] != "-"]
    if not rows:
        return "the 1M run has no setting with recall@5 >= 0.99 yet (docs/results/bench/gallery_1m.txt)"
    best = {}
    for r in rows:
        kind = r["index"].split()[0]
        if kind not in best or r["cpu_p50"] < best[kind]["cpu_p50"]:
            best[kind] = r
    parts = []
    for r in sorted(best.values(), key=lambda r: r["cpu_p50"]):
        cpu = f", {r['build_cpu_s']:,.0f} s CPU" if r["build_cpu_s"] else ""
        parts.append(
            f"{r['index']} {r['setting']}: recall@5 {r['recall']:.3f}, p50 {r['wall_p50']:.2f} ms wall / "
            f"{r['cpu_p50']:.2f} ms CPU, {r['mib']:,.0f} MiB, built in {r['build_s']:,.0f} s wall{cpu}"
        )
    if not any(r["index"].startswith("hnsw") for r in million_rows(text)):
        parts.append("HNSW: no result in this output (its build had not finished)")
    return "; ".join(parts)


def headlines(saved: dict) -> list[str]:
    p, f, w = saved["pipeline"], saved["footprint"], saved["wrk"]
    b1, bt, c = p["batch1"], p["batched_ms_per_image"], p["checks"]
    base, previous, ours = (b1[name] for name in PATHS)
    gw1 = next(r for r in w if r["target"] == "gateway" and r["connections"] == 1)
    gw8 = next(r for r in w if r["target"] == "gateway" and r["connections"] == 8)
    before, after = f["servers"]["before (torch)"], f["servers"]["after (ONNX Runtime)"]
    image_before, image_after = f["images"]["before (torch)"], f["images"]["after (ONNX Runtime)"]
    wall_ratio, cpu_ratio = base["p50"] / ours["p50"], base["cpu_p50"] / ours["cpu_p50"]
    socket_errors = int(gw8["err_timeout"] + gw8["err_connect"] + gw8["err_read"])
    rss_before, rss_after = _mean(before["worker_rss_mib"]), _mean(after["worker_rss_mib"])
    return [
        f"- **Our pipeline vs the paper-style path** (pytorch-grad-cam + eager torch), same photos, same "
        f"run: **{wall_ratio:.2f}x** faster per request at batch 1 (p50 {ours['p50']:.1f} vs "
        f"{base['p50']:.1f} ms; in CPU time, what a quiet core takes, **{cpu_ratio:.2f}x**), "
        f"{bt[PATHS[0]] / bt[PATHS[2]]:.2f}x batched; the previous server was "
        f"{base['p50'] / previous['p50']:.2f}x. Maps equal pytorch-grad-cam's to "
        f"{c['heatmap_max_abs_diff']:.0e} (Base) and {c['explanation_max_abs_diff']:.0e} (Heatmap model's "
        f"own); embeddings cosine >= {c['embedding_min_cosine']:.6f}.",
        f"- **/v1/match through the gateway**, 10,000-face gallery: p50 **{gw1['p50_us'] / 1e3:.0f} ms** at "
        f"1 connection, **{gw8['rps']:.1f} requests/s** at 8 connections ({gw8['non_2xx']} non-2xx, "
        f"{socket_errors} socket errors).",
        f"- **Footprint**: RSS per worker **{rss_before:.0f} -> {rss_after:.0f} MiB**, cold start "
        f"{before['cold_start_s']:.1f} -> {after['cold_start_s']:.1f} s, the image's Python packages "
        f"{image_before['total_mib']:.0f} -> {image_after['total_mib']:.0f} MiB (no torch).",
        f"- **Gallery at 1M faces** (real-shaped {_dim(saved['gallery_1m'])} vectors, one query at a time, "
        f"one thread): "
        f"{million_headline(saved['gallery_1m'])}.",
    ]


def _dim(text: str) -> str:
    """The vectors' size as the 1M run's first line states it ("... faces x 128-d from ...")."""
    found = re.search(r" x (\d+)-d ", text)
    return f"{found.group(1)}-d" if found else "?-d"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def render(saved: dict) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    not_run = {
        "text": "(not measured: the run was stopped before this script; see Load)",
        "seconds": 0,
        "load": [0, 0],
    }
    runs = {name: saved["runs"].get(name, not_run) for name in SECTIONS}
    plot_pipeline(saved["pipeline"])
    plot_wrk(saved["wrk"])
    plot_gallery(gallery_rows(runs["scale"]["text"]))
    fields = {name: r["text"] for name, r in runs.items()}
    fields |= {f"{name}_meta": f"{r['seconds']:.0f} s; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
               for name, r in runs.items()}  # fmt: skip
    fields |= {
        "command": f"bench/run_all.py{' --quick' if saved['quick'] else ''} --threads {saved['threads']}",
        "date": saved["date"],
        "minutes": f"{saved['minutes']:.0f}",
        "machine": saved["machine"],
        "load_before": f"{saved['load'][0]:.1f}",
        "load_after": f"{saved['load'][1]:.1f}",
        "busy": "\n".join(f"- {line}" for line in saved.get("busy", [])) or "- (nothing else)",
        "note": saved.get("note", ""),  # what happened to this run, written into its results.json
        "headlines": "\n".join(headlines(saved)),
        "gallery_1m": saved["gallery_1m"],
        "threads": saved["threads"],
    }
    DOC.write_text(Path(__file__).with_name("benchmarks_template.md").read_text().format(**fields))
    print(f"wrote {DOC.relative_to(ROOT)} and docs/figures/bench_*.png")
