"""The students trained on 7,752 identities, distilled view by view (docs/results/students/)."""

from pathlib import Path

from .runs import load_section


def section(results: Path, figures_dir: Path) -> str:
    runs = load_section(results, "students")
    if not runs:
        return "No results yet: `make students` trains, evaluates and collects them."
    raise NotImplementedError
