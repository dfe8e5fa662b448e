"""Turn finished, evaluated runs into shipped weights: float16 files and `manifest.json`.

Each manifest entry carries what the service needs (calibration and no-match threshold per vector kind,
fitted on the CelebA validation pairs), the headline metrics, and the provenance: the command that made
the weights, the git commit, the data version and the training configuration and wall time.
"""

import json
import subprocess
from pathlib import Path

from ..core.weights import export_model, write_manifest
from .data import data_version

HEADLINE_CONDITIONS = ("original", "occlusion_0.3", "brightness_0.7", "brightness_1.15", "noise_0.1")


def _git_commit() -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    return result.stdout.strip() or None


def _is_heatmap_run(run_dir: Path) -> bool:
    return bool(json.loads((run_dir / "config.json").read_text()).get("heatmap_source"))


def summary(metrics: dict) -> dict:
    """The numbers worth carrying next to the weights (the full metrics stay in docs/results)."""
    out: dict = {"closed_set_f1": {}, "verification": {}, "identification": {}}
    for name, conditions in metrics["closed_set"].items():
        out["closed_set_f1"][name] = {c: conditions[c]["f1"] for c in HEADLINE_CONDITIONS if c in conditions}
    for name, views in metrics["verification"].items():
        r = views["embedding"]
        out["verification"][name] = {k: r[k] for k in ("auc", "eer", "tar_at_far_0.001", "accuracy_10fold")}
    for name, views in metrics["identification"].items():
        out["identification"][name] = {k: views["embedding"][k] for k in ("top1", "top5")}
    return out


def ship(runs: Path, out_dir: Path, models: dict[str, str], default: str, command: str) -> Path:
    """`models` maps manifest names to run folder names, e.g. {"shufflenet-heatmap": "shufflenet-heatmap-s0"}.
    A Heatmap model's source run must be shipped too."""
    name_of_run = {run: name for name, run in models.items()}
    entries = {}
    base_first = sorted(models.items(), key=lambda item: _is_heatmap_run(runs / item[1]))
    for name, run in base_first:
        run_dir = runs / run
        metrics = json.loads((run_dir / "metrics.json").read_text())
        log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        config = json.loads((run_dir / "config.json").read_text())
        source = None
        if metrics["model"]["heatmap"]:
            source_run = Path(metrics["model"]["heatmap"]["source"]).parent.name
            if source_run not in name_of_run:
                raise ValueError(f"{name}: its heatmap source {source_run} must be shipped too")
            source = name_of_run[source_run]
        calibration = {
            view: report["calibration"]
            for view, report in metrics["verification"].get("celeba_val", {}).items()
            if "calibration" in report
        }
        entries[name] = export_model(
            run_dir / "model.pt",
            out_dir,
            name,
            source,
            flip_tta=True,
            calibration=calibration,
            metrics=summary(metrics),
            training={
                "command": command,
                "train_command": f"ai-server train {runs / run / 'config.json'} --out {runs / run}",
                "run": run,
                "git_commit": _git_commit(),
                "data_version": data_version(),
                "config": config,
                "epochs": log[-1]["epoch"],
                "train_minutes": round(sum(e["train_seconds"] for e in log) / 60, 1),
                "images_per_s": round(sum(e["images_per_s"] for e in log) / len(log), 1),
                "device": log[-1]["device"],
                "threads": log[-1]["threads"],
            },
        )
    return write_manifest(out_dir, entries, default)
