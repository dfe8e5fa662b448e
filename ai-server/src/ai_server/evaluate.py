"""Evaluation of a model file: closed-set under every condition, 4th-channel ablations, verification.

Writes one metrics JSON. Heatmaps are always recomputed, label-free, from the image the model is given
(the perturbed one); nothing in here reads a label before the prediction is made.
"""

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data
from .calibration import calibration_report
from .metrics import bootstrap_ci, closed_set_report, verification_report
from .models import sha256_file
from .perturb import (
    ABLATION_CONDITIONS,
    ALL_CONDITIONS,
    FOURTH_CHANNEL_MODES,
    Condition,
    ablate_heatmaps,
    condition_generator,
    perturb,
)
from .recognizer import Recognizer, in_batches

CLOSED_SETS = ("heldout", "yale_dark")
PAIR_SETS = ("celeba_val", "lfw")


def closed_set_images(config: dict, name: str, max_images: int | None = None) -> data.ImageSet:
    """The evaluation images of a closed set, labelled in the model's class order."""
    if name == "heldout":
        everyone = data.training_identities()
        _, held = data.holdout_split(everyone, config["holdout_fraction"], config["holdout_seed"])
        images = held.in_classes(config["classes"])
    elif name == "yale_dark":
        images = data.yale_dark(config["classes"])
    else:
        raise ValueError(f"unknown closed set {name!r}; expected one of {CLOSED_SETS}")
    if max_images and len(images) > max_images:  # evenly spaced, so every identity stays represented
        images = images.subset(np.linspace(0, len(images) - 1, max_images).round().astype(int).tolist())
    return images


def _predict(recognizer: Recognizer, rgb: torch.Tensor, heatmaps: torch.Tensor | None) -> np.ndarray:
    return in_batches(lambda x, h: recognizer.classify(recognizer.embed(x, h)), rgb, heatmaps).numpy()


def evaluate_closed_set(
    recognizer: Recognizer,
    images: torch.Tensor,
    labels: np.ndarray,
    conditions: list[Condition],
    ablation: list[Condition],
    repeats: int,
    seed: int,
    n_boot: int,
) -> tuple[dict, dict]:
    """Per condition: accuracy and F1 (random conditions pooled over `repeats` draws); ablations too."""
    results, ablations = {}, {}
    rgb_clean = images.float() / 255.0
    for condition in conditions:
        modes = FOURTH_CHANNEL_MODES if recognizer.uses_heatmap and condition in ablation else ("normal",)
        preds: dict[str, list[np.ndarray]] = {m: [] for m in modes}
        for r in range(repeats if condition.random else 1):
            rgb = perturb(rgb_clean, condition, condition_generator(seed, r))
            heat = in_batches(recognizer.heatmaps, rgb) if recognizer.uses_heatmap else None
            for m in modes:
                fourth = ablate_heatmaps(heat, m, seed + r) if heat is not None else None
                preds[m].append(_predict(recognizer, rgb, fourth))
        y = np.tile(labels, len(preds["normal"]))
        reports = {m: closed_set_report(y, np.concatenate(p), n_boot) for m, p in preds.items()}
        results[condition.name] = reports["normal"]
        if len(modes) > 1:
            ablations[condition.name] = reports
    return results, ablations


HEATMAP_VECTOR_SIZE = 128  # the paper's serving vector: the map at 128x128, flattened (16,384-d)
VIEWS = ("embedding", "embedding_noflip", "heatmap_vector")


def open_set_vectors(recognizer: Recognizer, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, L2-normalised: `embedding` with flip test-time augmentation (sum of the image's and
    its mirror's embeddings, each with its own heatmap), `embedding_noflip`, and the paper's
    `heatmap_vector` (the model's own Grad-CAM++ map at 128x128, flattened)."""

    def views(x: torch.Tensor) -> torch.Tensor:
        rgb = x.float() / 255.0
        emb, cam = recognizer.explain(rgb)
        flipped = recognizer.embed(rgb.flip(-1))
        cam = F.interpolate(cam, size=HEATMAP_VECTOR_SIZE, mode="bilinear", align_corners=False)
        return torch.cat(
            [F.normalize(emb + flipped, dim=1), F.normalize(emb, dim=1), F.normalize(cam.flatten(1), dim=1)],
            1,
        )

    out = in_batches(views, images)
    d = recognizer.model.head.bn.num_features
    return {"embedding": out[:, :d], "embedding_noflip": out[:, d : 2 * d], "heatmap_vector": out[:, 2 * d :]}


def verify_pairs(
    vectors: dict[str, torch.Tensor], index: dict[str, int], pairs: data.Pairs, n_boot: int, calibrate: bool
) -> dict:
    a = [index[p] for p in pairs.a]
    b = [index[p] for p in pairs.b]
    reports = {}
    for view, v in vectors.items():
        scores = (v[a] * v[b]).sum(dim=1).numpy()
        reports[view] = verification_report(scores, pairs.same, pairs.fold, n_boot)
        if calibrate:
            reports[view]["calibration"] = calibration_report(scores, pairs.same, pairs.fold)
    return reports


def identify(vectors: dict[str, torch.Tensor], identities: data.ImageSet, seed: int, n_boot: int) -> dict:
    """One-shot identification as /match does it: enrol one image per identity (seeded choice), query
    with every other image, rank the identities by cosine similarity; top-1 and top-5 accuracy."""
    labels = np.asarray(identities.labels)
    enrolled = []
    for y, name in enumerate(identities.classes):
        members = np.flatnonzero(labels == y).tolist()
        enrolled.append(random.Random(f"{seed}:{name}").choice(members))
    queries = np.setdiff1d(np.arange(len(labels)), enrolled)
    reports = {}
    for view, v in vectors.items():
        sims = (v[queries] @ v[enrolled].T).numpy()
        true = sims[np.arange(len(queries)), labels[queries]]
        rank = (sims > true[:, None]).sum(axis=1)  # 0 = the right person first
        top1, top5 = rank < 1, rank < 5
        reports[view] = {
            "gallery": len(enrolled),
            "queries": int(len(queries)),
            "top1": float(top1.mean()),
            "top1_ci": list(bootstrap_ci(np.mean, top1, n=n_boot)),
            "top5": float(top5.mean()),
            "top5_ci": list(bootstrap_ci(np.mean, top5, n=n_boot)),
        }
    return reports


def evaluate_open_set(
    recognizer: Recognizer, name: str, per_fold: int | None, seed: int, n_boot: int
) -> dict:
    """Verification on a pairs file; for celeba_val also identification over all its images."""
    pairs = data.read_pairs(name, per_fold=per_fold)
    identities = data.validation_identities() if name == "celeba_val" else None
    paths = sorted(set(pairs.images()) | set(identities.paths if identities else []))
    index = {p: i for i, p in enumerate(paths)}
    vectors = open_set_vectors(recognizer, data.load_images(paths))
    # calibration and the no-match threshold come from validation pairs only, never from LFW
    result = {"verification": verify_pairs(vectors, index, pairs, n_boot, calibrate=name == "celeba_val")}
    if identities:
        ordered = {view: v[[index[p] for p in identities.paths]] for view, v in vectors.items()}
        result["identification"] = identify(ordered, identities, seed, n_boot)
    return result


def evaluate(
    model_path: str | os.PathLike,
    out_path: str | os.PathLike,
    closed_sets: tuple[str, ...] = CLOSED_SETS,
    conditions: list[Condition] = ALL_CONDITIONS,
    ablation: list[Condition] = ABLATION_CONDITIONS,
    pair_sets: tuple[str, ...] = PAIR_SETS,
    repeats: int = 3,
    max_images: int | None = None,
    pairs_per_fold: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    log=print,
) -> dict:
    """Evaluate the model file and write the metrics JSON to `out_path`; returns the metrics."""
    started = time.perf_counter()
    recognizer = Recognizer.load(model_path)
    config = recognizer.config
    metrics = {
        "model": {
            "path": str(model_path),
            "sha256": sha256_file(model_path),
            "arch": config["arch"],
            "in_channels": config["in_channels"],
            "input_size": config["input_size"],
            "epochs_done": config.get("epochs_done"),
            "heatmap": config.get("heatmap"),
            "eval_heatmap_target": recognizer.cam_target if recognizer.uses_heatmap else None,
        },
        "protocol": {
            "conditions": [c.name for c in conditions],
            "ablation_conditions": [c.name for c in ablation],
            "random_condition_repeats": repeats,
            "heatmap_from": "perturbed image",
            "max_images": max_images,
            "pairs_per_fold": pairs_per_fold,
            "bootstrap": n_boot,
            "seed": seed,
            "threads": torch.get_num_threads(),
        },
        "closed_set": {},
        "ablation": {},
        "verification": {},
        "identification": {},
    }
    for name in closed_sets:
        image_set = closed_set_images(config, name, max_images)
        if not len(image_set):
            continue
        images = data.load_images(image_set.paths)
        results, ablations = evaluate_closed_set(
            recognizer, images, np.asarray(image_set.labels), conditions, ablation, repeats, seed, n_boot
        )
        metrics["closed_set"][name] = results
        if ablations:
            metrics["ablation"][name] = ablations
        log(f"{name}: original f1 {results.get('original', {}).get('f1', float('nan')):.4f}")
    for name in pair_sets:
        result = evaluate_open_set(recognizer, name, pairs_per_fold, seed, n_boot)
        metrics["verification"][name] = result["verification"]
        if "identification" in result:
            metrics["identification"][name] = result["identification"]
        log(f"{name}: auc {result['verification']['embedding']['auc']:.4f}")
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    os.replace(tmp, out_path)
    return metrics
