"""`docs/results.md` and `docs/figures/` from the committed metrics of every run.

`collect` copies each finished run's metrics, per-epoch log and config from a runs folder into
`docs/results/runs/<run>/` (weights stay out of git); `write_report` reads only those committed files
(plus the shipped weights for the overlay figure), so the report is regenerated the same way anywhere.
Seeds of one model kind are aggregated (mean and spread); single runs show their bootstrap 95% CI.
"""

import json
import os
import platform
import shutil
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt  # without a display matplotlib picks its Agg backend
import numpy as np

BACKBONES = {"mobilenet": "MobileNetV3", "shufflenet": "ShuffleNetV2", "efficientnet": "EfficientNet-B0"}
KINDS = {
    "base": "Base",
    "heatmap": "Heatmap",
    "scratch": "Heatmap from scratch",
    "continued": "Base trained on",
}
SWEEPS = {
    "noise": ["noise_0.05", "noise_0.1", "noise_0.15", "noise_0.2"],
    "occlusion": ["occlusion_0.1", "occlusion_0.2", "occlusion_0.3", "occlusion_0.4"],
    "brightness": ["brightness_0.7", "brightness_0.85", "brightness_1.15", "brightness_1.3"],
}
TABLE1 = ["original", "noise_0.1", "occlusion_0.3", "brightness_0.7", "brightness_1.15"]
# The paper's numbers (../shared/docs/paper.md): Table 1 columns Original / Noise / Occlusion / Brightness.
PAPER_TABLE1 = {
    ("mobilenet", "base"): [0.7859, 0.2666, 0.6692, 0.7737],
    ("mobilenet", "heatmap"): [0.8163, 0.2120, 0.6852, 0.7998],
    ("shufflenet", "base"): [0.7001, 0.0567, 0.5089, 0.6853],
    ("shufflenet", "heatmap"): [0.7851, 0.0690, 0.6213, 0.7661],
    ("efficientnet", "base"): [0.8170, 0.2735, 0.6915, 0.8072],
    ("efficientnet", "heatmap"): [0.8218, 0.2715, 0.6863, 0.8046],
}
PAPER_TABLE2 = {  # Normal / Zero / Random / Shuffle
    ("mobilenet", "occlusion_0.3"): [0.2542, 0.2511, 0.2455, 0.2526],
    ("mobilenet", "brightness_1.15"): [0.3426, 0.3401, 0.3369, 0.3426],
    ("mobilenet", "noise_0.1"): [0.0494, 0.0478, 0.0493, 0.0487],
    ("efficientnet", "occlusion_0.3"): [0.1220, 0.1239, 0.1164, 0.1217],
    ("efficientnet", "brightness_1.15"): [0.1664, 0.1683, 0.1590, 0.1658],
    ("efficientnet", "noise_0.1"): [0.0772, 0.0783, 0.0761, 0.0772],
    ("shufflenet", "occlusion_0.3"): [0.0533, 0.0503, 0.0536, 0.0537],
    ("shufflenet", "brightness_1.15"): [0.0958, 0.0896, 0.0967, 0.0954],
    ("shufflenet", "noise_0.1"): [0.0301, 0.0283, 0.0316, 0.0303],
}
PAPER_LFW_AUC = {
    ("mobilenet", "heatmap"): 0.804,
    ("shufflenet", "heatmap"): 0.8372,
    ("efficientnet", "heatmap"): 0.809,
}
PAPER_EPOCH3_F1 = {("mobilenet", "base"): 0.6471, ("mobilenet", "heatmap"): 0.7830}


def collect(runs: Path, results: Path) -> list[str]:
    """Copy metrics.json, log.jsonl and config.json of every evaluated run; returns the run names."""
    copied = []
    for metrics in sorted(runs.glob("*/metrics.json")):
        out = results / "runs" / metrics.parent.name
        out.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "log.jsonl", "config.json"):
            shutil.copyfile(metrics.parent / name, out / name)
        copied.append(metrics.parent.name)
    (results / "hardware.txt").write_text(_hardware() + "\n")
    return copied


def evaluate_shipped(weights_dir: Path, results: Path) -> None:
    """Re-evaluate every shipped model file (float16, sha256-checked) in place of its run's metrics."""
    from ..core.weights import load_manifest
    from .evaluate import evaluate

    for name, entry in load_manifest(weights_dir)["models"].items():
        print(f"evaluating {name} ({entry['training']['run']})", flush=True)
        evaluate(weights_dir / entry["file"], results / "runs" / entry["training"]["run"] / "metrics.json")


def _load(results: Path) -> dict[tuple[str, str], list[dict]]:
    """{(backbone, kind): [run, ...]} with each run's metrics, log and config, seeds in order."""
    groups = defaultdict(list)
    for folder in sorted((results / "runs").iterdir()):
        backbone, kind, _seed = folder.name.split("-")
        groups[(backbone, kind)].append(
            {
                "name": folder.name,
                "metrics": json.loads((folder / "metrics.json").read_text()),
                "log": [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()],
                "config": json.loads((folder / "config.json").read_text()),
            }
        )
    return groups


def _cell(runs: list[dict], get) -> str:
    """One table cell: a single run's value [95% CI], or several seeds' mean ± sd (n seeds)."""
    if len(runs) == 1:
        value, ci = get(runs[0]["metrics"])
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"
    values = np.array([get(r["metrics"])[0] for r in runs])
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} ({len(values)} seeds)"


def _f1(closed_set: str, condition: str):
    return lambda m: (
        m["closed_set"][closed_set][condition]["f1"],
        m["closed_set"][closed_set][condition]["f1_ci"],
    )


def _verification(pair_set: str, view: str, key: str):
    def get(m):
        r = m["verification"][pair_set][view]
        return r[key], r.get(f"{key}_ci")

    return get


def _identification(view: str, key: str):
    def get(m):
        r = m["identification"]["celeba_val"][view]
        return r[key], r[f"{key}_ci"]

    return get


def _name(backbone: str, kind: str) -> str:
    return f"{BACKBONES[backbone]} {KINDS[kind]}"


def _ordered(groups):
    return [(b, k) for b in BACKBONES for k in KINDS if (b, k) in groups]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _training_table(groups) -> str:
    rows = []
    for key in _ordered(groups):
        for run in groups[key]:
            log = run["log"]
            rows.append(
                [
                    run["name"],
                    str(log[-1]["epoch"]),
                    f"{np.mean([e['images_per_s'] for e in log]):.0f}",
                    f"{sum(e['train_seconds'] for e in log) / 60:.0f}",
                    f"{run['metrics']['seconds'] / 60:.0f}",
                    f"{log[-1]['device']}, {log[-1]['threads']} thread(s)",
                ]
            )
    header = ["run", "epochs", "train images/s", "train min", "evaluation min", "device"]
    return _table(header, rows)


def _table1(groups, closed_set: str) -> str:
    rows = []
    for key in _ordered(groups):
        row = [_name(*key)] + [_cell(groups[key], _f1(closed_set, c)) for c in TABLE1]
        if closed_set == "heldout":
            paper = PAPER_TABLE1.get(key)
            row.append(" / ".join(f"{v:.3f}" for v in paper) if paper else "")
        rows.append(row)
    header = ["model", *TABLE1] + (
        ["paper (orig / noise / occl / bright)"] if closed_set == "heldout" else []
    )
    return _table(header, rows)


def _table2(groups) -> str:
    rows = []
    for key in _ordered(groups):
        if key[1] in ("base", "continued"):  # RGB models have no 4th channel to ablate
            continue
        for condition in ("occlusion_0.3", "brightness_1.15", "noise_0.1"):
            cells = [
                _cell(groups[key], lambda m, c=condition, mode=mode: _ablation(m, c, mode))
                for mode in ("normal", "zero", "random", "shuffle")
            ]
            paper = PAPER_TABLE2.get((key[0], condition)) if key[1] == "heatmap" else None
            rows.append(
                [_name(*key), condition, *cells, " / ".join(f"{v:.4f}" for v in paper) if paper else ""]
            )
    header = ["model", "condition", "Normal", "Zero", "Random", "Shuffle", "paper (N / Z / R / S)"]
    return _table(header, rows)


def _ablation(m: dict, condition: str, mode: str):
    r = m["ablation"]["heldout"][condition][mode]
    return r["f1"], r["f1_ci"]


def _verification_table(groups, pair_set: str) -> str:
    rows = []
    for key in _ordered(groups):
        for view in ("embedding", "heatmap_vector"):
            cells = [
                _cell(groups[key], _verification(pair_set, view, k))
                for k in ("auc", "eer", "tar_at_far_0.001")
            ]
            cells.append(_cell(groups[key], _verification(pair_set, view, "accuracy_10fold")))
            paper = PAPER_LFW_AUC.get(key) if pair_set == "lfw" and view == "embedding" else None
            rows.append([_name(*key), view, *cells, f"{paper:.3f}" if paper else ""])
    header = ["model", "vector", "AUC", "EER", "TAR@FAR 1e-3", "10-fold accuracy", "paper AUC"]
    return _table(header, rows)


def _identification_table(groups) -> str:
    rows = []
    for key in _ordered(groups):
        for view in ("embedding", "heatmap_vector"):
            rows.append(
                [_name(*key), view] + [_cell(groups[key], _identification(view, k)) for k in ("top1", "top5")]
            )
    return _table(["model", "vector", "top-1", "top-5"], rows)


def _epoch_table(groups) -> str:
    rows = []
    for key in _ordered(groups):
        for epoch in (1, 3, 10, 30):
            values = [r["log"][epoch - 1]["heldout_f1"] for r in groups[key] if len(r["log"]) >= epoch]
            rows.append([_name(*key), str(epoch), f"{np.mean(values):.3f}", _paper_epoch(key, epoch)])
    return _table(["model", "epoch", "held-out F1 (mean over seeds)", "paper"], rows)


def _paper_epoch(key, epoch: int) -> str:
    return f"{PAPER_EPOCH3_F1[key]:.3f}" if epoch == 3 and key in PAPER_EPOCH3_F1 else ""


def _colour(kind: str) -> str:
    return {"base": "tab:blue", "heatmap": "tab:red", "scratch": "tab:grey", "continued": "tab:green"}[kind]


def _plot_sweeps(groups, closed_set: str, path: Path) -> None:
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
                ax.errorbar(
                    strengths,
                    values.mean(0),
                    yerr=values.std(0) if len(runs) > 1 else None,
                    label=KINDS[kind],
                    color=_colour(kind),
                    marker="o",
                    capsize=3,
                )
            ax.set_title(f"{BACKBONES[backbone]}: {sweep}")
            ax.set_xlabel("strength")
            ax.set_ylabel("macro F1")
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_convergence(groups, path: Path) -> None:
    backbones = [b for b in BACKBONES if any(k[0] == b for k in groups)]
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.5 * len(backbones), 3.4), squeeze=False)
    for ax, backbone in zip(axes[0], backbones, strict=True):
        for kind in KINDS:
            for i, run in enumerate(groups.get((backbone, kind), [])):
                f1 = [e["heldout_f1"] for e in run["log"]]
                ax.plot(
                    range(1, len(f1) + 1),
                    f1,
                    color=_colour(kind),
                    alpha=0.8,
                    label=KINDS[kind] if i == 0 else None,
                )
        ax.set_title(BACKBONES[backbone])
        ax.set_xlabel("epoch")
        ax.set_ylabel("held-out macro F1")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_roc(groups, pair_set: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    styles = {"mobilenet": ":", "shufflenet": "-", "efficientnet": "--"}
    for backbone, kind in _ordered(groups):
        run = groups[(backbone, kind)][0]
        r = run["metrics"]["verification"][pair_set]["embedding"]
        ax.plot(
            r["roc"]["fpr"],
            r["roc"]["tpr"],
            styles[backbone],
            color=_colour(kind),
            label=f"{run['name']} (AUC {r['auc']:.3f})",
        )
    shuffle = groups.get(("shufflenet", "heatmap"))
    if shuffle:
        r = shuffle[0]["metrics"]["verification"][pair_set]["heatmap_vector"]
        ax.plot(
            r["roc"]["fpr"],
            r["roc"]["tpr"],
            "-",
            color="tab:orange",
            label=f"{shuffle[0]['name']}, 16,384-d heatmap vector (AUC {r['auc']:.3f})",
        )
    ax.plot([0, 1], [0, 1], color="black", lw=0.5)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC on {pair_set} pairs (flip TTA embedding)")
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_overlays(weights_dir: Path, path: Path, n: int = 6) -> None:
    """Validation faces (never trained on) with the input heatmap (from the Base source) and the served
    model's own Grad-CAM++ map: what the 4th channel said and what drove the embedding."""
    import torch

    from ..core.weights import load_manifest, load_recognizer
    from . import data

    manifest = load_manifest(weights_dir)
    recognizer = load_recognizer(weights_dir, manifest["default"], manifest)
    people = data.validation_identities()
    firsts = sorted({label: i for i, label in reversed(list(enumerate(people.labels)))}.values())[:n]
    faces = data.load_images([people.paths[i] for i in firsts]).float() / 255
    out = recognizer.run(faces, explain=True)
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6))
    for i in range(n):
        rgb = faces[i].permute(1, 2, 0).numpy()
        for row, (title, heat) in enumerate(
            [
                ("face", None),
                ("input heatmap", out.heatmap[i, 0]),
                ("what drove the match", out.explanation[i, 0]),
            ]
        ):
            ax = axes[row][i]
            ax.imshow(rgb)
            if heat is not None:
                ax.imshow(torch.as_tensor(heat).numpy(), cmap="jet", alpha=0.45)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=8, loc="left")
    fig.suptitle(f"{manifest['default']} on CelebA validation faces", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _hardware() -> str:
    """This machine's CPU, recorded by `collect` beside the metrics (the runs were made here)."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
    ]
    return f"{names[0] if names else platform.processor()}, {os.cpu_count()} cores, no GPU"


def _mean(groups, key, get) -> float | None:
    runs = groups.get(key)
    return float(np.mean([get(r["metrics"])[0] for r in runs])) if runs else None


def _findings(groups) -> list[str]:
    """Plain sentences computed from the numbers, so that they stay true when the runs change."""
    out = []
    for backbone, label in BACKBONES.items():
        f1 = {k: _mean(groups, (backbone, k), _f1("heldout", "original")) for k in KINDS}
        auc = {k: _mean(groups, (backbone, k), _verification("lfw", "embedding", "auc")) for k in KINDS}
        if f1["base"] is None or f1["heatmap"] is None:
            continue
        line = (
            f"{label}: Heatmap vs Base, held-out F1 {f1['heatmap']:.3f} vs {f1['base']:.3f} "
            f"({f1['heatmap'] - f1['base']:+.3f}), LFW AUC {auc['heatmap']:.3f} vs {auc['base']:.3f} "
            f"({auc['heatmap'] - auc['base']:+.3f})"
        )
        if f1["scratch"] is not None:
            line += f"; Heatmap from scratch: F1 {f1['scratch']:.3f}, LFW AUC {auc['scratch']:.3f}"
        if f1["continued"] is not None:
            line += f"; Base trained on for the same budget: F1 {f1['continued']:.3f}"
            line += f", LFW AUC {auc['continued']:.3f}"
        out.append(line + ".")
    return out


def write_report(results: Path, docs: Path, weights_dir: Path) -> Path:
    """Regenerate docs/results.md and its figures from `results/runs/*` and the shipped weights."""
    groups = _load(results)
    figures = docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _plot_sweeps(groups, "heldout", figures / "sweeps_heldout.png")
    _plot_sweeps(groups, "yale_dark", figures / "sweeps_yale_dark.png")
    _plot_convergence(groups, figures / "convergence.png")
    _plot_roc(groups, "lfw", figures / "roc_lfw.png")
    _plot_roc(groups, "celeba_val", figures / "roc_celeba_val.png")
    _plot_overlays(weights_dir, figures / "overlays.png")
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    template = (Path(__file__).parent / "results_template.md").read_text()
    text = template.format(
        hardware=(results / "hardware.txt").read_text().strip(),
        runs=", ".join(r["name"] for key in _ordered(groups) for r in groups[key]),
        training=_training_table(groups),
        findings="\n".join(f"- {line}" for line in _findings(groups)),
        table1=_table1(groups, "heldout"),
        table1_yale=_table1(groups, "yale_dark"),
        table2=_table2(groups),
        epochs=_epoch_table(groups),
        verification_val=_verification_table(groups, "celeba_val"),
        verification_lfw=_verification_table(groups, "lfw"),
        identification=_identification_table(groups),
        shipped=_shipped_table(manifest),
        default=manifest["default"],
        beyond=_beyond_the_paper(groups, results, figures),
    )
    path = docs / "results.md"
    path.write_text(text)
    return path


def _shipped_table(manifest: dict) -> str:
    rows = []
    for name, entry in manifest["models"].items():
        c = entry["calibration"]["embedding"]
        rows.append(
            [
                name + (" (default)" if name == manifest["default"] else ""),
                entry["training"]["run"],
                f"{entry['bytes'] / 2**20:.1f} MiB",
                f"{c['no_match_threshold']:.3f}",
                f"{c['tar_at_threshold']:.3f}",
                f"{c['ece_heldout_folds']:.3f}",
                f"{c['ece_uncalibrated_cosine']:.3f}",
            ]
        )
    header = [
        "model",
        "run",
        "size",
        "no-match threshold (cosine, FAR 1e-3)",
        "TAR there",
        "ECE calibrated",
        "ECE raw cosine",
    ]
    return _table(header, rows)


# ---- Beyond the paper: distillation from dlib's ResNet (issue 10) ----
# Read from docs/results/distil/<run>/ (metrics.json, and log.jsonl + config.json for students) and
# docs/results/distil/teacher/metrics.json. A student evaluated on the validation pairs only took part in
# choosing the distillation weights; the fully evaluated ones (LFW too) are the chosen recipe.


def _load_distil(results: Path) -> dict[str, dict]:
    runs = {}
    folder = results / "distil"
    for d in sorted(folder.iterdir()) if folder.is_dir() else []:
        run = {"name": d.name, "metrics": json.loads((d / "metrics.json").read_text())}
        if (d / "log.jsonl").exists():
            run["log"] = [json.loads(line) for line in (d / "log.jsonl").read_text().splitlines()]
            run["config"] = json.loads((d / "config.json").read_text())
        runs[d.name] = run
    return runs


def _ci(value: float, ci) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def _open_set_cells(m: dict) -> list[str]:
    cells = []
    for pair_set in ("lfw", "celeba_val"):
        r = m["verification"].get(pair_set, {}).get("embedding")
        cells += [_ci(r["auc"], r["auc_ci"]), f"{r['tar_at_far_0.001']:.3f}"] if r else ["", ""]
    ident = m["identification"].get("celeba_val", {}).get("embedding")
    cells += (
        [_ci(ident["top1"], ident["top1_ci"]), _ci(ident["top5"], ident["top5_ci"])] if ident else ["", ""]
    )
    return cells


def _val_auc(m: dict) -> float:
    return m["verification"]["celeba_val"]["embedding"]["auc"]


def _distil_kind(name: str) -> str:
    return "Heatmap-distilled" if "-heatmap-" in name else "Base-distilled"


def _best_paper_student(groups) -> dict | None:
    """The paper-style run (Base or Heatmap, any backbone and seed) with the best validation-pairs AUC."""
    runs = [r for (_, kind), rs in groups.items() if kind in ("base", "heatmap") for r in rs]
    return max(runs, key=lambda r: _val_auc(r["metrics"])) if runs else None


def _plot_distil_roc(rows: list[tuple[str, dict]], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, pair_set in zip(axes, ("lfw", "celeba_val"), strict=True):
        for label, m in rows:
            r = m["verification"][pair_set]["embedding"]
            ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], label=f"{label} (AUC {r['auc']:.3f})")
        ax.plot([0, 1], [0, 1], color="black", lw=0.5)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("true accept rate")
        ax.set_title(f"ROC on {pair_set} pairs")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _student_parameters(config: dict) -> int:
    from ..core.models import build_model

    model = build_model(config["arch"], config["in_channels"], config["embedding_dim"], config["dropout"])
    return sum(p.numel() for p in model.parameters())


def _beyond_the_paper(groups, results: Path, figures: Path) -> str:
    """The 'Beyond the paper' section: teacher, best paper-style student and distilled students."""
    distil = _load_distil(results)
    teacher = distil.pop("teacher", None)
    if teacher is None or not distil:
        return "No distillation results yet (`make distil`)."
    paper = _best_paper_student(groups)
    full = [r for r in distil.values() if "lfw" in r["metrics"]["verification"]]
    rows = [("dlib ResNet teacher (not served)", "teacher", teacher["metrics"])]
    rows.append(
        (f"best paper-style student: {_name(*paper['name'].split('-')[:2])}", paper["name"], paper["metrics"])
    )
    rows += [(f"ShuffleNetV2 {_distil_kind(r['name'])}", r["name"], r["metrics"]) for r in full]
    header = [
        "model",
        "run",
        "LFW AUC",
        "LFW TAR@FAR 1e-3",
        "val AUC",
        "val TAR@FAR 1e-3",
        "val top-1",
        "val top-5",
    ]
    main = _table(header, [[label, name, *_open_set_cells(m)] for label, name, m in rows])
    _plot_distil_roc(
        [(f"{label.split(': ')[-1]} ({name})", m) for label, name, m in rows], figures / "roc_distil.png"
    )

    variants = []
    for r in distil.values():
        c, log = r["config"], r["log"]
        ident = r["metrics"]["identification"]["celeba_val"]["embedding"]
        v = r["metrics"]["verification"]["celeba_val"]["embedding"]
        variants.append(
            [
                r["name"],
                f"{c['arcface_weight']:g} / {c['distill_weight']:g} / {c['distill_relation_weight']:g}",
                "yes" if c.get("distill_center") else "no",
                _ci(v["auc"], v["auc_ci"]),
                _ci(ident["top1"], ident["top1_ci"]),
                _ci(ident["top5"], ident["top5_ci"]),
                f"{log[-1]['heldout_f1']:.3f}",
                f"{sum(e['train_seconds'] for e in log) / 60:.1f} ({log[-1]['device']})",
            ]
        )
    header = [
        "run",
        "ArcFace / cosine / relational weight",
        "centred",
        "val AUC",
        "val top-1",
        "val top-5",
        "held-out F1",
        "train min",
    ]
    variant_table = _table(header, variants)

    ablation_rows = []
    for r in full:
        for condition, modes in r["metrics"]["ablation"].get("heldout", {}).items():
            ablation_rows.append(
                [r["name"], condition]
                + [_ci(modes[k]["f1"], modes[k]["f1_ci"]) for k in ("normal", "zero", "random", "shuffle")]
            )
    for condition in (
        ("occlusion_0.3", "brightness_1.15", "noise_0.1") if ("shufflenet", "heatmap") in groups else ()
    ):
        ablation_rows.append(
            ["paper-style ShuffleNetV2 Heatmap", condition]
            + [
                _cell(groups[("shufflenet", "heatmap")], lambda m, c=condition, k=k: _ablation(m, c, k))
                for k in ("normal", "zero", "random", "shuffle")
            ]
        )
    ablation = _table(["model", "condition", "Normal", "Zero", "Random", "Shuffle"], ablation_rows)
    closed = _table(
        ["run", "held-out F1", "Yale dark F1"],
        [
            [r["name"]]
            + [
                _ci(
                    r["metrics"]["closed_set"][s]["original"]["f1"],
                    r["metrics"]["closed_set"][s]["original"]["f1_ci"],
                )
                for s in ("heldout", "yale_dark")
            ]
            for r in [paper, *full]
        ],
    )
    return "\n\n".join(
        [
            "\n".join(f"- {line}" for line in _distil_findings(teacher, paper, full)),
            "### Open set: teacher, best paper-style student, distilled students\n\n" + main,
            "![ROC teacher and students](figures/roc_distil.png)",
            "### Choosing the distillation weights (validation pairs only)\n\n" + variant_table,
            "### Does the heatmap channel still matter? 4th-channel ablation (held-out F1)\n\n" + ablation,
            "### Closed set (original condition, macro F1)\n\n" + closed,
            _cost_line(full),
        ]
    )


def _distil_findings(teacher: dict, paper: dict, full: list[dict]) -> list[str]:
    """Plain sentences computed from the numbers: gap closed, heatmap vs base, what it costs."""
    out = []
    if not full:
        return ["The distilled students are not fully evaluated yet."]
    best = max(full, key=lambda r: _val_auc(r["metrics"]))
    for pair_set, label in (("lfw", "LFW"), ("celeba_val", "validation-pairs")):
        t, p, b = (
            x["verification"][pair_set]["embedding"]["auc"]
            for x in (teacher["metrics"], paper["metrics"], best["metrics"])
        )
        out.append(
            f"{label} AUC: teacher {t:.3f}, best paper-style student {p:.3f}, best distilled student "
            f"({best['name']}) {b:.3f}: {b - p:+.3f}, {(b - p) / (t - p):+.0%} of the gap to the teacher."
        )
    ident = [
        x["identification"]["celeba_val"]["embedding"]
        for x in (teacher["metrics"], paper["metrics"], best["metrics"])
    ]
    out.append(
        "One-shot identification on the validation identities, top-1 / top-5: teacher "
        + ", best paper-style student ".join(f"{i['top1']:.3f} / {i['top5']:.3f}" for i in ident[:2])
        + f", best distilled student {ident[2]['top1']:.3f} / {ident[2]['top5']:.3f}."
    )
    tag = best["name"].split("-")[2]  # the chosen weights: compare that Base and Heatmap pair
    pair = {r["name"].split("-")[1]: r["metrics"] for r in full if r["name"].split("-")[2] == tag}
    if {"base", "heatmap"} <= set(pair):
        b, h = pair["base"], pair["heatmap"]
        vb, vh = b["verification"]["celeba_val"]["embedding"], h["verification"]["celeba_val"]["embedding"]
        lb, lh = b["verification"]["lfw"]["embedding"], h["verification"]["lfw"]["embedding"]
        overlap = vb["auc_ci"][0] <= vh["auc_ci"][1] and vh["auc_ci"][0] <= vb["auc_ci"][1]
        out.append(
            f"Heatmap-distilled vs Base-distilled: validation-pairs AUC {vh['auc']:.3f} vs {vb['auc']:.3f} "
            f"({vh['auc'] - vb['auc']:+.3f}; the 95% CIs {'overlap' if overlap else 'do not overlap'}), "
            f"LFW AUC "
            f"{lh['auc']:.3f} vs {lb['auc']:.3f} ({lh['auc'] - lb['auc']:+.3f})."
        )
    return out


def _cost_line(full: list[dict]) -> str:
    lines = []
    for r in full:
        c = r["config"]
        lines.append(
            f"- {r['name']}: {_student_parameters(c):,} parameters, the same architecture and input as the "
            f"paper-style {c['arch']} with {c['in_channels']} channels; the training-only projection head "
            f"({c['embedding_dim']} x 128 weights) stays in the run folder (`projection.pt`)."
        )
    return "### What it costs at inference\n\nNothing: the served file is the student alone.\n\n" + "\n".join(
        lines
    )
