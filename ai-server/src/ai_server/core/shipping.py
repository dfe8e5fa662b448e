"""Writing shipped weights: a run's model file -> its float16 ONNX graph and manifest entry, and the
re-export of a whole manifest (after an exporter change, or to convert one shipped before the graphs).

One file per model serves both runtimes: ONNX Runtime runs it in the service, and research reads the very
same float16 weights back into torch (`onnx_graph.read_onnx`), so the calibration fitted on evaluation's
vectors belongs to the file the service runs. Every export reads its weights back and refuses to finish if
one of them differs from the float16 rounding of the model it came from.
"""

import os
from pathlib import Path

import torch

from .models import load_model
from .onnx_graph import GRAPH_FORMAT, OPSET, export_onnx, read_onnx
from .recognizer import eval_target
from .weights import MANIFEST, WeightsError, load_manifest, sha256_file, write_manifest

EXPORT_COMMAND = "ai-server export-onnx"
WEIGHT_SUFFIXES = (".pt", ".onnx")  # the files a weights folder's models may use


def export_model(
    model_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str,
    heatmap_source: str | None = None,
    extra_targets: tuple[str, ...] = (),
    command: str = EXPORT_COMMAND,
    **facts,
) -> dict:
    """Write `model_file` (a run's `.pt`, or a shipped `.pt` or `.onnx`) as `<out_dir>/<name>.onnx` and
    return its manifest entry.

    `heatmap_source` is the manifest name of the Base model whose maps feed a Heatmap model (exported
    first: the Heatmap model's config names its file and sha256); `extra_targets` are the label-free
    targets, besides the embedding's norm, whose maps a Base model's Heatmap models read; `facts`
    (calibration, metrics, training...) are stored in the entry as they are.
    """
    out_dir = Path(out_dir)
    model, head, config = load_model(model_file)
    config = dict(config)
    if (config.get("heatmap") is None) != (heatmap_source is None):
        raise WeightsError(f"{name}: a Heatmap model needs heatmap_source, a Base model must not have one")
    if heatmap_source:  # point at the shipped source, so that `Recognizer.load` works on shipped files too
        source_file = out_dir / f"{heatmap_source}.onnx"
        if not source_file.exists():
            raise WeightsError(f"{name}: export its heatmap source {heatmap_source!r} first")
        shipped = {"source": source_file.name, "sha256": sha256_file(source_file)}
        config["heatmap"] = {**config["heatmap"], **shipped}
    config.pop("train_config", None)  # provenance lives in the manifest entry
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    graph = export_onnx(path, model, head, config, extra_targets)
    _check_round_trip(path, model, head)
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
        "onnx": {**graph, "command": command},
    }


def _check_round_trip(path: Path, model, head) -> None:
    """The graph's weights, read back as research reads them, are the float16 rounding of the model's."""
    blob = read_onnx(path)
    expected = {k: v.half() for k, v in model.state_dict().items() if v.is_floating_point()}
    expected["head.weight"] = head.weight.detach().half()
    got = {k: v for k, v in blob["model"].items() if v.is_floating_point()}
    got["head.weight"] = blob["head"]["weight"]
    if expected.keys() != got.keys() or not all(torch.equal(got[k], v) for k, v in expected.items()):
        raise WeightsError(f"{path}: the weights read back from the graph differ from the model's")


def is_current(entry: dict) -> bool:
    """Whether an entry's file is an ONNX graph of the format and opset this code writes."""
    graph = entry.get("onnx") or {}
    return entry["file"].endswith(".onnx") and (graph.get("graph_format"), graph.get("opset")) == (
        GRAPH_FORMAT,
        OPSET,
    )


def source_targets(entries: dict[str, dict]) -> dict[str, tuple[str, ...]]:
    """{Base model name: the label-free targets its Heatmap models read} from manifest entries."""
    wanted: dict[str, set[str]] = {}
    for entry in entries.values():
        if entry.get("heatmap_source"):
            wanted.setdefault(entry["heatmap_source"], set()).add(entry["cam_target"])
    return {name: tuple(sorted(targets)) for name, targets in wanted.items()}


def reexport_entry(weights_dir: Path, name: str, entry: dict, targets: tuple, command: str) -> dict:
    """An existing manifest entry's model, exported again beside it; its facts are kept, since the
    weights are the same (checked), and a converted file says what it came from."""
    kept = {k: v for k, v in entry.items() if k not in _WRITTEN}
    new = export_model(
        weights_dir / entry["file"], weights_dir, name, entry.get("heatmap_source"), targets, command, **kept
    )
    if not entry["file"].endswith(".onnx"):
        new["onnx"]["converted_from"] = {"file": entry["file"], "sha256": entry["sha256"]}
    elif "converted_from" in (entry.get("onnx") or {}):
        new["onnx"]["converted_from"] = entry["onnx"]["converted_from"]
    return new


_WRITTEN = {"file", "sha256", "bytes", "arch", "in_channels", "input_size", "embedding_dim"}
_WRITTEN |= {"heatmap_source", "cam_target", "onnx"}


def reexport_manifest(weights_dir: str | os.PathLike, command: str = EXPORT_COMMAND) -> Path:
    """Export every model of a manifest again as ONNX (Base models first), rewrite the manifest and
    remove the files no model uses any more (a converted manifest's `.pt` files)."""
    weights_dir = Path(weights_dir)
    manifest = load_manifest(weights_dir)
    models = manifest["models"]
    targets = source_targets(models)
    entries = {}
    for name in sorted(models, key=lambda n: bool(models[n].get("heatmap_source"))):
        entries[name] = reexport_entry(weights_dir, name, models[name], targets.get(name, ()), command)
    path = write_manifest(weights_dir, {n: entries[n] for n in models}, manifest["default"])
    remove_stale(weights_dir, {e["file"] for e in entries.values()})
    return path


def remove_stale(weights_dir: Path, referenced: set[str]) -> list[str]:
    """Delete the weight files of a folder that no manifest entry names."""
    stale = sorted(
        f for f in set(os.listdir(weights_dir)) - referenced - {MANIFEST} if f.endswith(WEIGHT_SUFFIXES)
    )
    for name in stale:
        (weights_dir / name).unlink()
    return stale
