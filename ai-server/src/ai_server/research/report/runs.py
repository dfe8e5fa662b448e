"""The committed results the report reads: `docs/results/<section>/<run>/` (metrics, log, config).

Sections: `runs` (the reproduction), `distil` (distillation from dlib, issue 10) and `students` (the
students trained on 7,752 identities). `collect` copies finished runs into a section (weights stay out of
git); the report reads only these files, so it is regenerated the same way anywhere.
"""

import json
import os
import platform
import shutil
from collections import defaultdict
from pathlib import Path

SECTIONS = ("runs", "distil", "students")


def collect(runs: Path, results: Path, section: str = "runs") -> list[str]:
    """Copy metrics.json (and metrics-shipped.json of a shipped file) and, for trained runs, log.jsonl and
    config.json of every run: evaluated ones, and probes (runs stopped early, known by their logs only)."""
    copied = []
    folders = {p.parent for pattern in ("*/metrics.json", "*/log.jsonl") for p in runs.glob(pattern)}
    for folder in sorted(folders):
        out = results / section / folder.name
        out.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "metrics-shipped.json", "log.jsonl", "config.json"):
            if (folder / name).exists():
                shutil.copyfile(folder / name, out / name)
        copied.append(folder.name)
    (results / "hardware.txt").write_text(hardware() + "\n")
    return copied


def committed_run(results: Path, run: str) -> Path:
    """The folder holding a run's committed metrics, whichever section it is in."""
    for section in SECTIONS:
        if (results / section / run).is_dir():
            return results / section / run
    raise ValueError(f"{run}: no committed metrics in {results}/{{{','.join(SECTIONS)}}}")


def evaluate_shipped(weights_dir: Path, results: Path) -> None:
    """Re-evaluate every shipped model file (float16, sha256-checked) in place of its run's metrics, with
    the protocol its committed metrics were made with."""
    from ...core.weights import load_manifest
    from ..evaluate import evaluate

    for name, entry in load_manifest(weights_dir)["models"].items():
        folder = committed_run(results, entry["training"]["run"])
        old = json.loads((folder / "metrics.json").read_text())
        print(f"evaluating {name} ({folder})", flush=True)
        evaluate(
            weights_dir / entry["file"],
            folder / "metrics.json",
            closed_sets=tuple(old["closed_set"]),
            pair_sets=tuple(old["verification"]),
            repeats=old["protocol"].get("random_condition_repeats", 3),
            identity_ci=old["protocol"].get("ci") == "identity bootstrap",
        )


def load_run(folder: Path) -> dict:
    run = {"name": folder.name}
    if (folder / "metrics.json").exists():
        run["metrics"] = json.loads((folder / "metrics.json").read_text())
    if (folder / "log.jsonl").exists():
        run["log"] = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        run["config"] = json.loads((folder / "config.json").read_text())
    return run


def load_section(results: Path, section: str) -> dict[str, dict]:
    folder = results / section
    return {d.name: load_run(d) for d in sorted(folder.iterdir()) if d.is_dir()} if folder.is_dir() else {}


def load_reproduction(results: Path) -> dict[tuple[str, str], list[dict]]:
    """{(backbone, kind): [run, ...]} of the reproduction runs (named backbone-kind-seed), seeds in order."""
    groups = defaultdict(list)
    for name, run in load_section(results, "runs").items():
        backbone, kind, _seed = name.split("-")
        groups[(backbone, kind)].append(run)
    return groups


def devices(runs: list[dict]) -> str:
    """Where these runs trained, from their logs (e.g. "cpu (1 thread)" or "cuda")."""

    def where(log: list[dict]) -> str:
        device, threads = log[-1]["device"], log[-1]["threads"]
        return f"{device} ({threads} thread{'s' * (threads > 1)})" if device == "cpu" else device

    return ", ".join(sorted({where(r["log"]) for r in runs if r.get("log")})) or "not trained here"


def hardware() -> str:
    """This machine's CPU, recorded by `collect` beside the metrics (evaluation ran here)."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
    ]
    return f"{names[0] if names else platform.processor()}, {os.cpu_count()} cores"
