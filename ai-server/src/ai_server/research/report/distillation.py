"""'Beyond the paper' (issue 10): dlib's ResNet distilled into ShuffleNetV2 trained on 225 identities.

Read from docs/results/distil/<run>/ (metrics.json, and log.jsonl + config.json for students) and
docs/results/distil/teacher/metrics.json. A student evaluated on the validation pairs only took part in
choosing the distillation weights; the fully evaluated ones (LFW too) are the chosen recipe.
"""

from pathlib import Path

from . import figures
from .runs import load_section
from .tables import ablation, cell, ci, name, table


def open_set_cells(m: dict) -> list[str]:
    cells = []
    for pair_set in ("lfw", "celeba_val"):
        r = m["verification"].get(pair_set, {}).get("embedding")
        cells += [ci(r["auc"], r["auc_ci"]), f"{r['tar_at_far_0.001']:.3f}"] if r else ["", ""]
    ident = m["identification"].get("celeba_val", {}).get("embedding")
    cells += [ci(ident["top1"], ident["top1_ci"]), ci(ident["top5"], ident["top5_ci"])] if ident else ["", ""]
    return cells


def val_auc(m: dict) -> float:
    return m["verification"]["celeba_val"]["embedding"]["auc"]


def _kind(run_name: str) -> str:
    return "Heatmap-distilled" if "-heatmap-" in run_name else "Base-distilled"


def best_paper_student(groups) -> dict | None:
    """The paper-style run (Base or Heatmap, any backbone and seed) with the best validation-pairs AUC."""
    runs = [r for (_, kind), rs in groups.items() if kind in ("base", "heatmap") for r in rs]
    return max(runs, key=lambda r: val_auc(r["metrics"])) if runs else None


def section(groups, results: Path, figures_dir: Path) -> str:
    """The section's body: findings, the open-set table and ROC, weight choice, ablation, closed set, cost."""
    distil = load_section(results, "distil")
    teacher = distil.pop("teacher", None)
    if teacher is None or not distil:
        return "No distillation results yet (`make distil`)."
    paper = best_paper_student(groups)
    full = [r for r in distil.values() if "lfw" in r["metrics"]["verification"]]
    rows = [("dlib ResNet teacher (not served)", "teacher", teacher["metrics"])]
    rows.append(
        (f"best paper-style student: {name(*paper['name'].split('-')[:2])}", paper["name"], paper["metrics"])
    )
    rows += [(f"ShuffleNetV2 {_kind(r['name'])}", r["name"], r["metrics"]) for r in full]
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
    main = table(header, [[label, run, *open_set_cells(m)] for label, run, m in rows])
    curves = [(f"{label.split(': ')[-1]} ({run})", m) for label, run, m in rows]
    figures.roc_panels(curves, ("lfw", "celeba_val"), figures_dir / "roc_distil.png")
    return "\n\n".join(
        [
            "\n".join(f"- {line}" for line in findings(teacher, paper, full)),
            "### Open set: teacher, best paper-style student, distilled students\n\n" + main,
            "![ROC teacher and students](figures/roc_distil.png)",
            "### Choosing the distillation weights (validation pairs only)\n\n" + _variants(distil),
            "### Does the heatmap channel still matter? 4th-channel ablation (held-out F1)\n\n"
            + _ablation_table(groups, full),
            "### Closed set (original condition, macro F1)\n\n" + _closed_set_table([paper, *full]),
            _cost(full),
        ]
    )


def _variants(distil: dict[str, dict]) -> str:
    rows = []
    for r in distil.values():
        c, log = r["config"], r["log"]
        ident = r["metrics"]["identification"]["celeba_val"]["embedding"]
        v = r["metrics"]["verification"]["celeba_val"]["embedding"]
        rows.append(
            [
                r["name"],
                f"{c['arcface_weight']:g} / {c['distill_weight']:g} / {c['distill_relation_weight']:g}",
                "yes" if c.get("distill_center") else "no",
                ci(v["auc"], v["auc_ci"]),
                ci(ident["top1"], ident["top1_ci"]),
                ci(ident["top5"], ident["top5_ci"]),
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
    return table(header, rows)


def _ablation_table(groups, full: list[dict]) -> str:
    modes = ("normal", "zero", "random", "shuffle")
    rows = []
    for r in full:
        for condition, results in r["metrics"]["ablation"].get("heldout", {}).items():
            rows.append([r["name"], condition] + [ci(results[k]["f1"], results[k]["f1_ci"]) for k in modes])
    paper_runs = groups.get(("shufflenet", "heatmap"))
    for condition in ("occlusion_0.3", "brightness_1.15", "noise_0.1") if paper_runs else ():
        cells = [cell(paper_runs, ablation(condition, k)) for k in modes]
        rows.append(["paper-style ShuffleNetV2 Heatmap", condition, *cells])
    return table(["model", "condition", "Normal", "Zero", "Random", "Shuffle"], rows)


def _closed_set_table(runs: list[dict]) -> str:
    def original(r: dict, s: str) -> str:
        result = r["metrics"]["closed_set"][s]["original"]
        return ci(result["f1"], result["f1_ci"])

    return table(
        ["run", "held-out F1", "Yale dark F1"],
        [[r["name"], original(r, "heldout"), original(r, "yale_dark")] for r in runs],
    )


def findings(teacher: dict, paper: dict, full: list[dict]) -> list[str]:
    """Plain sentences computed from the numbers: gap closed, heatmap vs base, what it costs."""
    if not full:
        return ["The distilled students are not fully evaluated yet."]
    best = max(full, key=lambda r: val_auc(r["metrics"]))
    out = []
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
        out.append(_heatmap_vs_base(pair["base"], pair["heatmap"]))
    return out


def _heatmap_vs_base(b: dict, h: dict) -> str:
    vb, vh = b["verification"]["celeba_val"]["embedding"], h["verification"]["celeba_val"]["embedding"]
    lb, lh = b["verification"]["lfw"]["embedding"], h["verification"]["lfw"]["embedding"]
    overlap = vb["auc_ci"][0] <= vh["auc_ci"][1] and vh["auc_ci"][0] <= vb["auc_ci"][1]
    return (
        f"Heatmap-distilled vs Base-distilled: validation-pairs AUC {vh['auc']:.3f} vs {vb['auc']:.3f} "
        f"({vh['auc'] - vb['auc']:+.3f}; the 95% CIs {'overlap' if overlap else 'do not overlap'}), "
        f"LFW AUC "
        f"{lh['auc']:.3f} vs {lb['auc']:.3f} ({lh['auc'] - lb['auc']:+.3f})."
    )


def parameters(config: dict) -> int:
    from ...core.models import build_model

    model = build_model(config["arch"], config["in_channels"], config["embedding_dim"], config["dropout"])
    return sum(p.numel() for p in model.parameters())


def _cost(full: list[dict]) -> str:
    lines = []
    for r in full:
        c = r["config"]
        lines.append(
            f"- {r['name']}: {parameters(c):,} parameters, the same architecture and input as the "
            f"paper-style {c['arch']} with {c['in_channels']} channels; the training-only projection head "
            f"({c['embedding_dim']} x 128 weights) stays in the run folder (`projection.pt`)."
        )
    return "### What it costs at inference\n\nNothing: the served file is the student alone.\n\n" + "\n".join(
        lines
    )
