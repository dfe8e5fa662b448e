"""Shipped weights: float16 model files plus `manifest.json` (sha256, provenance, metrics, calibration).

The manifest is what the service trusts: every file is checked against its sha256 before use, a Heatmap
model names its heatmap source by manifest name, and each model carries the similarity -> confidence
calibration and the "no reliable match" threshold measured on validation pairs.
"""

import json
import os
from pathlib import Path

import torch

from .models import sha256_file
from .paths import in_repo
from .recognizer import Recognizer, eval_target

MANIFEST = "manifest.json"


def default_weights_dir() -> Path:
    """$AI_SERVER_WEIGHTS_DIR, else model-weights/ of the checkout (the image sets the variable)."""
    return Path(os.environ.get("AI_SERVER_WEIGHTS_DIR") or in_repo("model-weights"))


class WeightsError(Exception):
    """The weights folder is missing, incomplete or does not match its manifest."""


def export_model(
    model_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str,
    heatmap_source: str | None = None,
    **facts,
) -> dict:
    """Write `model_file` as float16 `<out_dir>/<name>.pt` and return its manifest entry.

    `heatmap_source` is the manifest name of the Base model whose maps feed a Heatmap model; `facts`
    (calibration, no_match_threshold, metrics, training...) are stored in the entry as they are.
    """
    model_file, out_dir = Path(model_file), Path(out_dir)
    blob = torch.load(model_file, map_location="cpu", weights_only=True)
    config = dict(blob["config"])
    if (config.get("heatmap") is None) != (heatmap_source is None):
        raise WeightsError(f"{name}: a Heatmap model needs heatmap_source, a Base model must not have one")
    if heatmap_source:  # point at the shipped source, so that `Recognizer.load` works on shipped files too
        source_file = out_dir / f"{heatmap_source}.pt"
        if not source_file.exists():
            raise WeightsError(f"{name}: export its heatmap source {heatmap_source!r} first")
        shipped = {"source": source_file.name, "sha256": sha256_file(source_file)}
        config["heatmap"] = {**config["heatmap"], **shipped}
    config.pop("train_config", None)  # provenance lives in the manifest entry
    half = {
        part: {k: v.half() if v.is_floating_point() else v for k, v in blob[part].items()}
        for part in ("model", "head")
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.pt"
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": config, **half}, tmp)
    os.replace(tmp, path)
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "arch": config["arch"],
        "in_channels": config["in_channels"],
        "input_size": config["input_size"],
        "embedding_dim": config["embedding_dim"],
        "heatmap_source": heatmap_source,
        "cam_target": eval_target(config) if heatmap_source else None,
        **facts,
    }


def write_manifest(out_dir: str | os.PathLike, models: dict[str, dict], default: str) -> Path:
    if default not in models:
        raise WeightsError(f"default model {default!r} is not among {sorted(models)}")
    path = Path(out_dir) / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"default": default, "models": models}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_manifest(weights_dir: str | os.PathLike | None = None, verify: bool = True) -> dict:
    """The manifest, with every model file checked against its sha256 (unless verify=False)."""
    weights_dir = Path(weights_dir or default_weights_dir())
    path = weights_dir / MANIFEST
    if not path.exists():
        raise WeightsError(f"no {MANIFEST} in {weights_dir}: the trained weights are missing")
    manifest = json.loads(path.read_text())
    for name, entry in manifest["models"].items():
        file = weights_dir / entry["file"]
        if not file.exists():
            raise WeightsError(f"{name}: {file} is missing")
        if verify and sha256_file(file) != entry["sha256"]:
            raise WeightsError(f"{name}: {file} does not match the sha256 in {MANIFEST}")
        if entry.get("heatmap_source") and entry["heatmap_source"] not in manifest["models"]:
            raise WeightsError(f"{name}: heatmap source {entry['heatmap_source']!r} is not in {MANIFEST}")
    return manifest


def load_recognizer(
    weights_dir: str | os.PathLike | None, name: str, manifest: dict, device: str = "cpu"
) -> Recognizer:
    """The named model of a verified manifest, ready to embed faces. `Recognizer.load` is the one loader:
    a shipped Heatmap model's file names its shipped source and that file's sha256 (`export_model`)."""
    weights_dir = Path(weights_dir or default_weights_dir())
    return Recognizer.load(weights_dir / manifest["models"][name]["file"], device=device)
