"""The report's figures, each written to docs/figures/ from committed metrics (or the shipped weights)."""

from pathlib import Path

import matplotlib.pyplot as plt  # without a display matplotlib picks its Agg backend
import numpy as np

from .paper import BACKBONES, KINDS, SWEEPS
from .tables import ordered

COLOURS = {"base": "tab:blue", "heatmap": "tab:red", "scratch": "tab:grey", "continued": "tab:green"}


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def sweeps(groups, closed_set: str, path: Path) -> None:
    backbones = [b for b in BACKBONES if any(k[0] == b for k in groups)]
    fig, axes = plt.subplots(len(backbones), 3, figsize=(12, 3.2 * len(backbones)), squeeze=False)
    for row, backbone in enumerate(backbones):
        for col, (sweep, conditions) in enumerate(SWEEPS.items()):
            ax = axes[row][col]
            strengths = [float(c.split("_")[1]) for c in conditions]
            for kind in KINDS:
                runs = groups.get((backbone, kind))
                if not runs:
                    continue
                values = np.array(
                    [[r["metrics"]["closed_set"][closed_set][c]["f1"] for c in conditions] for r in runs]
                )
                yerr = values.std(0) if len(runs) > 1 else None
                ax.errorbar(
                    strengths,
                    values.mean(0),
                    yerr=yerr,
                    label=KINDS[kind],
                    color=COLOURS[kind],
                    marker="o",
                    capsize=3,
                )
            ax.set_title(f"{BACKBONES[backbone]}: {sweep}")
            ax.set_xlabel("strength")
            ax.set_ylabel("macro F1")
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    _save(fig, path)


def convergence(groups, path: Path) -> None:
    backbones = [b for b in BACKBONES if any(k[0] == b for k in groups)]
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.5 * len(backbones), 3.4), squeeze=False)
    for ax, backbone in zip(axes[0], backbones, strict=True):
        for kind in KINDS:
            for i, run in enumerate(groups.get((backbone, kind), [])):
                values = [e["heldout_f1"] for e in run["log"]]
                label = KINDS[kind] if i == 0 else None
                ax.plot(range(1, len(values) + 1), values, color=COLOURS[kind], alpha=0.8, label=label)
        ax.set_title(BACKBONES[backbone])
        ax.set_xlabel("epoch")
        ax.set_ylabel("held-out macro F1")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    _save(fig, path)


def _roc_axes(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], color="black", lw=0.5)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def reproduction_roc(groups, pair_set: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    styles = {"mobilenet": ":", "shufflenet": "-", "efficientnet": "--"}
    for backbone, kind in ordered(groups):
        run = groups[(backbone, kind)][0]
        r = run["metrics"]["verification"][pair_set]["embedding"]
        label = f"{run['name']} (AUC {r['auc']:.3f})"
        ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], styles[backbone], color=COLOURS[kind], label=label)
    shuffle = groups.get(("shufflenet", "heatmap"))
    if shuffle:
        r = shuffle[0]["metrics"]["verification"][pair_set]["heatmap_vector"]
        label = f"{shuffle[0]['name']}, 16,384-d heatmap vector (AUC {r['auc']:.3f})"
        ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], "-", color="tab:orange", label=label)
    _roc_axes(ax, f"ROC on {pair_set} pairs (flip TTA embedding)")
    ax.legend(fontsize=6.5, loc="lower right")
    _save(fig, path)


def roc_panels(rows: list[tuple[str, dict]], pair_sets: tuple[str, ...], path: Path) -> None:
    """One ROC panel per pairs set, one curve per (label, metrics) row."""
    fig, axes = plt.subplots(1, len(pair_sets), figsize=(5.5 * len(pair_sets), 5), squeeze=False)
    for ax, pair_set in zip(axes[0], pair_sets, strict=True):
        for label, m in rows:
            r = m["verification"][pair_set]["embedding"]
            ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], label=f"{label} (AUC {r['auc']:.3f})")
        _roc_axes(ax, f"ROC on {pair_set} pairs")
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def by_gallery_size(runs: list[dict], identities: str, label, path: Path) -> None:
    """One-shot top-1 against the number of people enrolled (random subsets of the val identities)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for run in runs:
        curve = run["metrics"]["identification"][identities]["embedding"].get("top1_by_gallery_size")
        if curve:
            sizes = sorted(curve, key=int)
            ax.plot([int(n) for n in sizes], [curve[n] for n in sizes], marker="o", label=label(run))
    ax.set_xscale("log")
    ax.set_xlabel("people enrolled (one photo each)")
    ax.set_ylabel("right person first (top-1)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def reliability(rows: list[tuple[str, list[dict]]], path: Path) -> None:
    """Reliability diagrams: per probability bin, how often the candidates shown were the person."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="black", lw=0.5, label="perfect calibration")
    for label, bins in rows:
        x = [b["mean_probability"] for b in bins]
        y = [b["fraction_right"] for b in bins]
        ax.plot(x, y, marker="o", label=label)
        for b, xi, yi in zip(bins, x, y, strict=True):
            ax.annotate(str(b["n"]), (xi, yi), fontsize=6, textcoords="offset points", xytext=(3, -8))
    ax.set_xlabel("confidence shown (mean per bin)")
    ax.set_ylabel("fraction that were the person")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def epochs_before(run: dict, runs: dict[str, dict]) -> int:
    """Epochs its seed chain trained before this run (`init_from` run folders, followed to the first)."""
    parent = runs.get(Path(run["config"].get("init_from") or "").parent.name)
    return len(parent["log"]) + epochs_before(parent, runs) if parent else 0


def curves(runs: list[dict], keys: list[tuple[str, str]], path: Path) -> None:
    """Per-epoch curves from the runs' logs, one panel per (log key, axis label); a run continued from
    another starts where that one ended (its `init_from`), so a model's whole training shows as one line."""
    by_name = {r["name"]: r for r in runs}
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        for run in runs:
            start = epochs_before(run, by_name)
            values = [e.get(key) for e in run["log"]]
            ax.plot(range(start + 1, start + len(values) + 1), values, marker=".", label=run["name"])
        ax.set_xlabel("epoch (continued runs after their seed's)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _save(fig, path)


def overlays(weights_dir: Path, path: Path, n: int = 6) -> None:
    """Validation faces (never trained on) with the input heatmap (from the Base source) and the served
    model's own Grad-CAM++ map: what the 4th channel said and what drove the embedding."""
    import torch

    from ...core.recognizer import load_recognizer
    from ...core.weights import load_manifest
    from .. import data

    manifest = load_manifest(weights_dir)
    recognizer = load_recognizer(weights_dir, manifest["default"], manifest)
    people = data.validation_identities()
    firsts = sorted({label: i for i, label in reversed(list(enumerate(people.labels)))}.values())[:n]
    faces = data.load_images([people.paths[i] for i in firsts]).float() / 255
    out = recognizer.run(faces, explain=True)
    rows = [("face", None), ("input heatmap", out.heatmap), ("what drove the match", out.explanation)]
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6))
    for i in range(n):
        for row, (title, maps) in enumerate(rows):
            ax = axes[row][i]
            ax.imshow(faces[i].permute(1, 2, 0).numpy())
            if maps is not None:
                ax.imshow(torch.as_tensor(maps[i, 0]).numpy(), cmap="jet", alpha=0.45)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=8, loc="left")
    fig.suptitle(f"{manifest['default']} on CelebA validation faces", fontsize=9)
    _save(fig, path)
