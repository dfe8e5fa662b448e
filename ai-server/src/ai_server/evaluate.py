"""Evaluation of a model file: closed-set under every condition, 4th-channel ablations, verification.

Writes one metrics JSON. Heatmaps are always recomputed, label-free, from the image the model is given
(the perturbed one); nothing in here reads a label before the prediction is made.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data
from .metrics import closed_set_report, verification_report
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


def embed_with_flip(recognizer: Recognizer, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised sum of the embeddings of each image and its mirror (flip test-time augmentation);
    each view gets the heatmap of that view."""

    def both(x: torch.Tensor) -> torch.Tensor:
        rgb = x.float() / 255.0
        return recognizer.embed(rgb) + recognizer.embed(rgb.flip(-1))

    return F.normalize(in_batches(both, images), dim=1)


def evaluate_pairs(recognizer: Recognizer, name: str, per_fold: int | None, n_boot: int) -> dict:
    pairs = data.read_pairs(name, per_fold=per_fold)
    paths = pairs.images()
    index = {p: i for i, p in enumerate(paths)}
    emb = embed_with_flip(recognizer, data.load_images(paths))
    a = emb[[index[p] for p in pairs.a]]
    b = emb[[index[p] for p in pairs.b]]
    scores = (a * b).sum(dim=1).numpy()
    return {"embedding": verification_report(scores, pairs.same, pairs.fold, n_boot)}


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
        metrics["verification"][name] = evaluate_pairs(recognizer, name, pairs_per_fold, n_boot)
        log(f"{name}: auc {metrics['verification'][name]['embedding']['auc']:.4f}")
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    os.replace(tmp, out_path)
    return metrics
