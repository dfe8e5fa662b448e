"""`make bench`: every benchmark against its baseline, one after the other, then docs/benchmarks.md (their
output, verbatim, under the hardware, each script's load before and after, and the commit) and
docs/figures/bench_*.png.

Each script runs its own baseline in the same process or the same run, so the ratios hold even on a busy
machine; the absolute numbers do not. The 1M-face gallery benchmark (`make bench-gallery-1m`, an hour and
8 GiB) is not run here: its kept output (docs/results/bench/gallery_1m.txt) is pasted in. Usage:
    .venv/bin/python bench/run_all.py [--threads 2] [--quick] [--resume RESULTS_JSON | --render RESULTS_JSON]
--quick: shorter wrk runs and match_latency, no 16,384-d gallery (its HNSW build alone takes minutes).
--resume: rerun only the scripts of a saved run that failed (the others keep their output), then render.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from report import render

ROOT = Path(__file__).resolve().parents[1]
GALLERY_1M = ROOT / "docs" / "results" / "bench" / "gallery_1m.txt"


def run(script: str, *args, data: Path | None = None) -> dict:
    """One benchmark script: its output (and its JSON file `data`), its seconds and the load average before
    and after it; a failure is recorded, not fatal, so that `--resume` reruns only what failed."""
    before, started = os.getloadavg()[0], time.perf_counter()
    command = [sys.executable, str(ROOT / "bench" / script), *map(str, args)]
    print("$", " ".join(command[1:]), f"(load {before:.1f})", flush=True)
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    record = {"seconds": time.perf_counter() - started, "load": [before, os.getloadavg()[0]]}
    if out.returncode:
        print(f"{script} failed:\n{out.stderr[-3000:]}", flush=True)
        return {**record, "failed": True, "text": out.stderr[-3000:]}
    record["text"] = out.stdout.strip()
    if data is not None:
        record["data"] = json.loads(data.read_text())
    return record


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT)
    import onnxruntime

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}; commit "
        f"{commit.stdout.strip()}{' + uncommitted changes' if dirty.stdout.strip() else ''}"
    )


def busy() -> list[str]:
    """The other processes using a core's fifth or more as the run starts (what the load is made of)."""
    out = subprocess.run(["ps", "-eo", "pid=,pcpu=,ni=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines() if len(line.split(None, 3)) == 4]
    return [
        f"{float(cpu):.0f}% CPU, nice {ni}: {args[:90]}"
        for pid, cpu, ni, args in rows
        if float(cpu) >= 20 and int(pid) not in (os.getpid(), os.getppid())
    ]


def plan(args, tmp: Path) -> dict[str, tuple]:
    """Each section's script and arguments, in the order they run."""
    q = args.quick
    return {
        "pipeline": ("pipeline_bench.py", "--threads", args.threads, "--photos", 16, "--rounds", 3,
                     "--json", tmp / "pipeline.json"),
        "detect": ("detect_bench.py", "--photos", 30),
        "footprint": ("footprint.py", "--matches", 30, "--json", tmp / "footprint.json"),
        "wrk": ("wrk_match.py", "--seconds", 8 if q else 15, "--json", tmp / "wrk.json"),
        "overhead": ("gateway_overhead.py", "--photos", 30, "--rounds", 3),
        "quota": ("quota_check.py", "--searches", 1000, 10_000, 100_000),
        "latency": ("match_latency.py", "--queries", 30 if q else 60),
        "scale": ("gallery_scale.py", "--sizes", 10_000, 100_000, "--queries", 200,
                  "--heatmap-sizes", *([] if q else [10_000])),
        "enrol": ("enrol_throughput.py", "--threads", args.threads, "--per-person", 3),
    }  # fmt: skip


def measure(args, tmp: Path, saved: dict | None = None) -> dict:
    """Run every bench (with `saved`, only those that failed or did not run), saving the results after
    each one; everything the document needs, as JSON-able data."""
    saved = saved or {"runs": {}, "minutes": 0.0, "load": [os.getloadavg()[0], None], "busy": busy()}
    started, earlier = time.time(), saved["minutes"]

    def stamp() -> None:  # after each script too: a run stopped midway still renders what it measured
        saved.update(
            load=[saved["load"][0], os.getloadavg()[0]],
            minutes=earlier + (time.time() - started) / 60,
            date=f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            machine=machine(),
            quick=args.quick,
            threads=args.threads,
        )
        (tmp / "results.json").write_text(json.dumps(saved, indent=1))

    for name, (script, *script_args) in plan(args, tmp).items():
        if name in saved["runs"] and not saved["runs"][name].get("failed"):
            continue
        data = next((a for a in script_args if isinstance(a, Path)), None)
        saved["runs"][name] = run(script, *script_args, data=data)
        stamp()
    stamp()
    return saved


def with_data(saved: dict) -> dict:
    """The saved run plus what the document reads at the top level: the JSON results and the 1M output."""
    runs = saved["runs"]
    gallery = GALLERY_1M.read_text().strip() if GALLERY_1M.exists() else "(not run yet)"
    return {**saved, **{k: runs[k]["data"] for k in ("pipeline", "footprint", "wrk")}, "gallery_1m": gallery}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render", help="only rewrite the document from a saved run (its results.json)")
    parser.add_argument("--resume", help="a saved run's results.json: rerun what failed, then render")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
    else:
        tmp = Path(args.resume).parent if args.resume else Path(tempfile.mkdtemp(prefix="bench-"))
        saved = measure(args, tmp, json.loads(Path(args.resume).read_text()) if args.resume else None)
        print(f"raw results: {tmp / 'results.json'} (bench/run_all.py --render it after editing the text)")
    if failed := [name for name, r in saved["runs"].items() if r.get("failed")]:
        sys.exit(f"not rendered: {', '.join(failed)} failed; fix them, then --resume the results.json")
    render(with_data(saved))


if __name__ == "__main__":
    main()
