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

from ..core.models import model_input, sha256_file
from ..core.recognizer import Recognizer, in_batches
from ..core.vectors import face_vectors
from . import data
from .calibration import calibration_report, identification_calibration
from .heatmaps import cached_heatmaps
from .metrics import bootstrap_ci, closed_set_report, cluster_bootstrap_ci, verification_report
from .perturb import (
    ABLATION_CONDITIONS,
    ALL_CONDITIONS,
    FOURTH_CHANNEL_MODES,
    Condition,
    ablate_heatmaps,
    condition_generator,
    perturb,
)

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


VIEWS = ("embedding", "embedding_noflip", "heatmap_vector")


def open_set_vectors(recognizer: Recognizer, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, L2-normalised, exactly as the server computes them (`core.vectors.face_vectors`):
    `embedding` with flip test-time augmentation, `embedding_noflip`, and the paper's `heatmap_vector`."""

    def views(x: torch.Tensor) -> torch.Tensor:
        v = face_vectors(recognizer, x.float() / 255.0, flip=True, explain=True)
        return torch.cat([v.embedding, v.embedding_noflip, v.heatmap_vector()], 1)

    out = in_batches(views, images)
    d = recognizer.model.head.bn.num_features
    return {"embedding": out[:, :d], "embedding_noflip": out[:, d : 2 * d], "heatmap_vector": out[:, 2 * d :]}


def identity_of(path: str) -> str:
    """The identity folder of a data path (faces112/<set>/<identity>/<file>): the bootstrap's cluster."""
    return path.split("/")[2]


def verify_pairs(
    vectors: dict[str, torch.Tensor],
    index: dict[str, int],
    pairs: data.Pairs,
    n_boot: int,
    calibrate: bool,
    identity_ci: bool = False,
) -> dict:
    a = [index[p] for p in pairs.a]
    b = [index[p] for p in pairs.b]
    clusters = np.array([identity_of(p) for p in pairs.a]) if identity_ci else None
    reports = {}
    for view, v in vectors.items():
        scores = (v[a] * v[b]).sum(dim=1).numpy()
        reports[view] = verification_report(scores, pairs.same, pairs.fold, n_boot, clusters)
        if calibrate:
            reports[view]["calibration"] = calibration_report(scores, pairs.same, pairs.fold)
    return reports


def _enrolled(identities: data.ImageSet, seed: int) -> list[int]:
    """The one image per identity that one-shot identification enrols (a seeded choice)."""
    labels = np.asarray(identities.labels)
    return [
        random.Random(f"{seed}:{name}").choice(np.flatnonzero(labels == y).tolist())
        for y, name in enumerate(identities.classes)
    ]


def one_shot_ranks(
    vectors: torch.Tensor, identities: data.ImageSet, seed: int, among: np.ndarray | None = None
) -> np.ndarray:
    """One-shot identification as /match does it: enrol one image per identity, query with every other
    image, rank the identities by cosine similarity. Per query, how many enrolled people score above the
    right one (0 = the right person first). `among`: only these identities are enrolled and queried."""
    labels = np.asarray(identities.labels)
    enrolled = np.asarray(_enrolled(identities, seed))
    queries = np.setdiff1d(np.arange(len(labels)), enrolled)
    if among is not None:
        enrolled = enrolled[among]
        queries = queries[np.isin(labels[queries], among)]
    sims = (vectors[queries] @ vectors[enrolled].T).numpy()
    column = {y: i for i, y in enumerate(labels[enrolled])}
    true = sims[np.arange(len(queries)), [column[y] for y in labels[queries]]]
    return (sims > true[:, None]).sum(axis=1)


GALLERY_SIZES = (10, 30, 100, 300, 1000)


def top1_by_gallery_size(
    vectors: torch.Tensor, identities: data.ImageSet, seed: int, draws: int = 10
) -> dict:
    """Mean one-shot top-1 when only n of the identities are enrolled (n random identities, `draws` times):
    how a search degrades as the gallery grows."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in (n for n in GALLERY_SIZES if n <= len(identities.classes)):
        picks = [rng.choice(len(identities.classes), n, replace=False) for _ in range(draws)]
        out[str(n)] = float(
            np.mean([(one_shot_ranks(vectors, identities, seed, p) < 1).mean() for p in picks])
        )
    return out


def identify(
    vectors: dict[str, torch.Tensor],
    identities: data.ImageSet,
    seed: int,
    n_boot: int,
    identity_ci: bool = False,
) -> dict:
    """Top-1 and top-5 accuracy of one-shot identification (`one_shot_ranks`) per vector kind; with
    `identity_ci` the CIs resample the query identities rather than single queries."""
    labels = np.asarray(identities.labels)
    reports = {}
    for view, v in vectors.items():
        rank = one_shot_ranks(v, identities, seed)
        top1, top5 = rank < 1, rank < 5
        if identity_ci:
            queried = labels[np.setdiff1d(np.arange(len(labels)), _enrolled(identities, seed))]
            ci1 = cluster_bootstrap_ci(np.mean, queried, top1, n=n_boot)
            ci5 = cluster_bootstrap_ci(np.mean, queried, top5, n=n_boot)
        else:
            ci1, ci5 = bootstrap_ci(np.mean, top1, n=n_boot), bootstrap_ci(np.mean, top5, n=n_boot)
        reports[view] = {
            "gallery": len(identities.classes),
            "queries": int(len(rank)),
            "top1": float(top1.mean()),
            "top1_ci": list(ci1),
            "top5": float(top5.mean()),
            "top5_ci": list(ci5),
            **({"ci": "identity bootstrap"} if identity_ci else {}),
        }
        if identity_ci:
            reports[view]["top1_by_gallery_size"] = top1_by_gallery_size(v, identities, seed)
        if view == "embedding" and len(identities.classes) >= 20:  # the served vectors' search probability
            reports[view]["calibration"] = identification_calibration(v.numpy(), labels, seed)
    return reports


class Monitor:
    """One-shot top-1 on a fixed subset of celeba_ext val (evenly spaced identities) after each epoch, so
    that under- and over-fitting show in the run's log. Flip TTA as served; a Heatmap model reads its
    source's maps of the val images (computed once: the source is frozen)."""

    def __init__(self, n_identities: int, heatmap_source: str | None, cache_dir, size: int = 112):
        everyone = data.celeba_ext_validation()
        self.identities = everyone.evenly_spaced(n_identities)
        images = data.load_images(self.identities.paths)
        self.rgb = torch.cat([images, images.flip(-1)])
        self.size = size
        self.heat = None
        if heatmap_source:
            self.heat = cached_heatmaps(self.rgb, heatmap_source, "embedding_norm", size, cache_dir)

    def __call__(self, model) -> float:
        model.eval()
        device = next(model.parameters()).device

        def embed(rgb: torch.Tensor, heat: torch.Tensor | None) -> torch.Tensor:
            heat = heat.to(device) if heat is not None else None
            with torch.no_grad():
                return model(model_input(rgb.to(device).float() / 255.0, heat, self.size)).float().cpu()

        emb = in_batches(embed, self.rgb, self.heat)
        n = len(emb) // 2
        ranks = one_shot_ranks(F.normalize(emb[:n] + emb[n:], dim=1), self.identities, seed=0)
        return float((ranks < 1).mean())


IDENTIFICATION_SETS = {"celeba_val": data.validation_identities, "celeba_ext_val": data.celeba_ext_validation}
CALIBRATION_SETS = ("celeba_val", "celeba_ext_val")  # validation pairs only, never LFW


def open_set_report(
    vectors_of,
    name: str,
    per_fold: int | None,
    seed: int,
    n_boot: int,
    identity_ci: bool = False,
    max_identities: int | None = None,
) -> dict:
    """Verification on a pairs file (calibrated on validation sets) and, for a validation set, one-shot
    identification over all its images (or those of `max_identities` evenly spaced identities: a quick
    look). `vectors_of(paths)` gives {kind: (N, D) L2-normalised}."""
    pairs = data.read_pairs(name, per_fold=per_fold)
    identities = (
        IDENTIFICATION_SETS[name]().evenly_spaced(max_identities) if name in IDENTIFICATION_SETS else None
    )
    paths = sorted(set(pairs.images()) | set(identities.paths if identities else []))
    index = {p: i for i, p in enumerate(paths)}
    vectors = vectors_of(paths)
    calibrate = name in CALIBRATION_SETS
    result = {"verification": verify_pairs(vectors, index, pairs, n_boot, calibrate, identity_ci)}
    if identities:
        ordered = {view: v[[index[p] for p in identities.paths]] for view, v in vectors.items()}
        result["identification"] = identify(ordered, identities, seed, n_boot, identity_ci)
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
    identity_ci: bool = False,
    max_identities: int | None = None,
    log=print,
) -> dict:
    """Evaluate the model file and write the metrics JSON to `out_path`; returns the metrics."""
    started = time.perf_counter()
    recognizer = Recognizer.load(model_path)
    config = recognizer.config
    metrics = {
        "model": _model_facts(recognizer, model_path),
        "protocol": {
            "conditions": [c.name for c in conditions],
            "ablation_conditions": [c.name for c in ablation],
            "random_condition_repeats": repeats,
            "heatmap_from": "perturbed image",
            "max_images": max_images,
            "pairs_per_fold": pairs_per_fold,
            "max_identities": max_identities,
            "bootstrap": n_boot,
            "ci": "identity bootstrap" if identity_ci else "row bootstrap",
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

    def vectors_of(paths: list[str]) -> dict[str, torch.Tensor]:
        return open_set_vectors(recognizer, data.load_images(paths))

    for name in pair_sets:
        result = open_set_report(vectors_of, name, pairs_per_fold, seed, n_boot, identity_ci, max_identities)
        metrics["verification"][name] = result["verification"]
        if "identification" in result:
            metrics["identification"][name] = result["identification"]
        log(f"{name}: auc {result['verification']['embedding']['auc']:.4f}")
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    _write_json(Path(out_path), metrics)
    return metrics


def _model_facts(recognizer: Recognizer, model_path) -> dict:
    config = recognizer.config
    return {
        "path": str(model_path),
        "sha256": sha256_file(model_path),
        "arch": config["arch"],
        "in_channels": config["in_channels"],
        "input_size": config["input_size"],
        "epochs_done": config.get("epochs_done"),
        "heatmap": config.get("heatmap"),
        "eval_heatmap_target": recognizer.cam_target if recognizer.uses_heatmap else None,
    }


def _write_json(path: Path, value: dict) -> None:
    """Atomically: a metrics file is either the old one or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)
