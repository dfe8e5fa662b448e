"""Markdown tables and their cells: one run's value with its 95% CI, or several seeds' mean ± sd."""

import numpy as np

from .paper import BACKBONES, KINDS, PAPER_EPOCH3_F1, PAPER_LFW_AUC, PAPER_TABLE1, PAPER_TABLE2, TABLE1


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def ci(value: float, interval) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{value:.3f}"


def cell(runs: list[dict], get) -> str:
    """One table cell: a single run's value [95% CI], or several seeds' mean ± sd (n seeds)."""
    if len(runs) == 1:
        return ci(*get(runs[0]["metrics"]))
    values = np.array([get(r["metrics"])[0] for r in runs])
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} ({len(values)} seeds)"


# ---- getters: metrics -> (value, CI or None) ----
def f1(closed_set: str, condition: str):
    return lambda m: (
        m["closed_set"][closed_set][condition]["f1"],
        m["closed_set"][closed_set][condition]["f1_ci"],
    )


def verification(pair_set: str, view: str, key: str):
    def get(m):
        r = m["verification"][pair_set][view]
        return r[key], r.get(f"{key}_ci")

    return get


def identification(view: str, key: str, identities: str = "celeba_val"):
    def get(m):
        r = m["identification"][identities][view]
        return r[key], r[f"{key}_ci"]

    return get


def ablation(condition: str, mode: str):
    def get(m):
        r = m["ablation"]["heldout"][condition][mode]
        return r["f1"], r["f1_ci"]

    return get


def mean(groups, key, get) -> float | None:
    runs = groups.get(key)
    return float(np.mean([get(r["metrics"])[0] for r in runs])) if runs else None


# ---- the reproduction's tables ----
def name(backbone: str, kind: str) -> str:
    return f"{BACKBONES[backbone]} {KINDS[kind]}"


def ordered(groups):
    return [(b, k) for b in BACKBONES for k in KINDS if (b, k) in groups]


def training_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
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
    return table(header, rows)


def table1(groups, closed_set: str) -> str:
    rows = []
    for key in ordered(groups):
        row = [name(*key)] + [cell(groups[key], f1(closed_set, c)) for c in TABLE1]
        if closed_set == "heldout":
            paper = PAPER_TABLE1.get(key)
            row.append(" / ".join(f"{v:.3f}" for v in paper) if paper else "")
        rows.append(row)
    header = ["model", *TABLE1] + (
        ["paper (orig / noise / occl / bright)"] if closed_set == "heldout" else []
    )
    return table(header, rows)


def table2(groups) -> str:
    rows = []
    for key in ordered(groups):
        if key[1] in ("base", "continued"):  # RGB models have no 4th channel to ablate
            continue
        for condition in ("occlusion_0.3", "brightness_1.15", "noise_0.1"):
            cells = [
                cell(groups[key], ablation(condition, mode))
                for mode in ("normal", "zero", "random", "shuffle")
            ]
            paper = PAPER_TABLE2.get((key[0], condition)) if key[1] == "heatmap" else None
            rows.append(
                [name(*key), condition, *cells, " / ".join(f"{v:.4f}" for v in paper) if paper else ""]
            )
    header = ["model", "condition", "Normal", "Zero", "Random", "Shuffle", "paper (N / Z / R / S)"]
    return table(header, rows)


def verification_table(groups, pair_set: str) -> str:
    rows = []
    for key in ordered(groups):
        for view in ("embedding", "heatmap_vector"):
            cells = [
                cell(groups[key], verification(pair_set, view, k)) for k in ("auc", "eer", "tar_at_far_0.001")
            ]
            cells.append(cell(groups[key], verification(pair_set, view, "accuracy_10fold")))
            paper = PAPER_LFW_AUC.get(key) if pair_set == "lfw" and view == "embedding" else None
            rows.append([name(*key), view, *cells, f"{paper:.3f}" if paper else ""])
    header = ["model", "vector", "AUC", "EER", "TAR@FAR 1e-3", "10-fold accuracy", "paper AUC"]
    return table(header, rows)


def identification_table(groups) -> str:
    rows = []
    for key in ordered(groups):
        for view in ("embedding", "heatmap_vector"):
            rows.append(
                [name(*key), view] + [cell(groups[key], identification(view, k)) for k in ("top1", "top5")]
            )
    return table(["model", "vector", "top-1", "top-5"], rows)


def epoch_table(groups) -> str:
    rows = []
    for key in ordered(groups):
        for epoch in (1, 3, 10, 30):
            values = [r["log"][epoch - 1]["heldout_f1"] for r in groups[key] if len(r["log"]) >= epoch]
            paper = f"{PAPER_EPOCH3_F1[key]:.3f}" if epoch == 3 and key in PAPER_EPOCH3_F1 else ""
            rows.append([name(*key), str(epoch), f"{np.mean(values):.3f}", paper])
    return table(["model", "epoch", "held-out F1 (mean over seeds)", "paper"], rows)


def shipped_table(manifest: dict) -> str:
    rows = []
    for model, entry in manifest["models"].items():
        c = entry["calibration"]["embedding"]
        rows.append(
            [
                model + (" (default)" if model == manifest["default"] else ""),
                entry["training"]["run"],
                f"{entry['bytes'] / 2**20:.1f} MiB",
                c.get("fitted_on", "celeba_val"),
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
        "calibrated on",
        "no-match threshold (cosine, FAR 1e-3)",
        "TAR there",
        "ECE calibrated",
        "ECE raw cosine",
    ]
    return table(header, rows)
