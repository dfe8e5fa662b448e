"""`docs/results.md` and `docs/figures/` from the committed metrics of every run.

`runs` reads and collects the committed results, `paper` holds the paper's numbers, `tables` and `figures`
turn metrics into markdown and plots, and one module per part of the report (`reproduction`,
`distillation`, `students`) fills its fields of `results_template.md`. Nothing here trains or evaluates
(except `evaluate_shipped`), so the report is regenerated the same way anywhere.
"""

import json
from pathlib import Path

from . import distillation, figures, reproduction, students
from .runs import collect, devices, evaluate_shipped, load_reproduction, load_section
from .tables import shipped_table

__all__ = ["collect", "evaluate_shipped", "write_report"]


def write_report(results: Path, docs: Path, weights_dir: Path) -> Path:
    """Regenerate docs/results.md and its figures from `results/*` and the shipped weights."""
    groups = load_reproduction(results)
    figures_dir = docs / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures.overlays(weights_dir, figures_dir / "overlays.png")
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    trained = {
        "reproduction": [r for rs in groups.values() for r in rs],
        "distillation": list(load_section(results, "distil").values()),
        "students": list(load_section(results, "students").values()),
    }
    where = "; ".join(f"{part} runs: {devices(runs)}" for part, runs in trained.items() if runs)
    template = (Path(__file__).parent / "results_template.md").read_text()
    text = template.format(
        hardware=(results / "hardware.txt").read_text().strip(),
        devices=where,
        shipped=shipped_table(manifest),
        default=manifest["default"],
        beyond=distillation.section(groups, results, figures_dir),
        students=students.section(results, figures_dir),
        **reproduction.fields(groups, figures_dir),
    )
    path = docs / "results.md"
    path.write_text(text)
    return path
