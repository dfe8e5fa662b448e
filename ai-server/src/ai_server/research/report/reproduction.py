"""The reproduction's part of the report: its tables, figures and findings, as template fields."""

from pathlib import Path

from . import figures
from .paper import BACKBONES, KINDS
from .tables import (
    epoch_table,
    f1,
    identification_table,
    mean,
    ordered,
    table1,
    table2,
    training_table,
    verification,
    verification_table,
)


def findings(groups) -> list[str]:
    """Plain sentences computed from the numbers, so that they stay true when the runs change."""
    out = []
    for backbone, label in BACKBONES.items():
        score = {k: mean(groups, (backbone, k), f1("heldout", "original")) for k in KINDS}
        auc = {k: mean(groups, (backbone, k), verification("lfw", "embedding", "auc")) for k in KINDS}
        if score["base"] is None or score["heatmap"] is None:
            continue
        line = (
            f"{label}: Heatmap vs Base, held-out F1 {score['heatmap']:.3f} vs {score['base']:.3f} "
            f"({score['heatmap'] - score['base']:+.3f}), LFW AUC {auc['heatmap']:.3f} vs {auc['base']:.3f} "
            f"({auc['heatmap'] - auc['base']:+.3f})"
        )
        if score["scratch"] is not None:
            line += f"; Heatmap from scratch: F1 {score['scratch']:.3f}, LFW AUC {auc['scratch']:.3f}"
        if score["continued"] is not None:
            line += f"; Base trained on for the same budget: F1 {score['continued']:.3f}"
            line += f", LFW AUC {auc['continued']:.3f}"
        out.append(line + ".")
    return out


def fields(groups, figures_dir: Path) -> dict[str, str]:
    figures.sweeps(groups, "heldout", figures_dir / "sweeps_heldout.png")
    figures.sweeps(groups, "yale_dark", figures_dir / "sweeps_yale_dark.png")
    figures.convergence(groups, figures_dir / "convergence.png")
    figures.reproduction_roc(groups, "lfw", figures_dir / "roc_lfw.png")
    figures.reproduction_roc(groups, "celeba_val", figures_dir / "roc_celeba_val.png")
    runs = [r for key in ordered(groups) for r in groups[key]]
    return {
        "runs": ", ".join(r["name"] for r in runs),
        "training": training_table(runs),
        "findings": "\n".join(f"- {line}" for line in findings(groups)),
        "table1": table1(groups, "heldout"),
        "table1_yale": table1(groups, "yale_dark"),
        "table2": table2(groups),
        "epochs": epoch_table(groups),
        "verification_val": verification_table(groups, "celeba_val"),
        "verification_lfw": verification_table(groups, "lfw"),
        "identification": identification_table(groups),
    }
