"""Shipped weights: one float16 ONNX graph per model plus `manifest.json` (sha256, provenance, metrics,
calibration).

The manifest is what the service trusts: every file is checked against its sha256 before use, a Heatmap
model names its heatmap source by manifest name, and each model carries the similarity -> confidence
calibration and the "no reliable match" threshold measured on validation pairs. This module is torch-free
because the service reads it without torch; `core.shipping` (torch) writes the files.
"""

import hashlib
import json
import os
from pathlib import Path

from .paths import in_repo

MANIFEST = "manifest.json"
ONNX_SUFFIX = ".onnx"


def default_weights_dir() -> Path:
    """$AI_SERVER_WEIGHTS_DIR, else model-weights/ of the checkout (the image sets the variable)."""
    return Path(os.environ.get("AI_SERVER_WEIGHTS_DIR") or in_repo("model-weights"))


class WeightsError(Exception):
    """The weights folder is missing, incomplete or does not match its manifest."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def onnx_file(weights_dir: str | os.PathLike | None, manifest: dict, name: str) -> Path:
    """The ONNX graph of a manifest model, or a `WeightsError` that says how to make it (a manifest
    shipped before the graphs names `.pt` files, which only the research code reads)."""
    entry = manifest["models"][name]
    if not entry["file"].endswith(ONNX_SUFFIX):
        raise WeightsError(
            f"{name}: {entry['file']} is not an ONNX graph; the service runs ONNX Runtime only. "
            "Re-export the manifest with `ai-server export-onnx` (make onnx)."
        )
    return Path(weights_dir or default_weights_dir()) / entry["file"]
