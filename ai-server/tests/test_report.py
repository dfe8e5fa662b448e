"""The committed report is what the committed command makes from the committed metrics."""

import json
from pathlib import Path

import numpy as np

from ai_server.research.report import write_report
from ai_server.serving.settings import default_weights_dir

REPO = Path(__file__).resolve().parents[2]


def test_results_md_is_regenerated_from_committed_metrics(tmp_path):
    written = write_report(REPO / "docs" / "results", tmp_path, default_weights_dir())
    assert written.read_text() == (REPO / "docs" / "results.md").read_text(), "run `make report` and commit"
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert figures and figures <= {p.name for p in (REPO / "docs" / "figures").iterdir()}


def test_a_multi_seed_cell_is_the_mean_and_sd_of_its_runs(tmp_path):
    runs = sorted((REPO / "docs" / "results" / "runs").glob("shufflenet-base-s*"))
    f1 = np.array(
        [
            json.loads((r / "metrics.json").read_text())["closed_set"]["heldout"]["original"]["f1"]
            for r in runs
        ]
    )
    text = write_report(REPO / "docs" / "results", tmp_path, default_weights_dir()).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ShuffleNetV2 Base | "))
    assert row.split(" | ")[1] == f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f} ({len(runs)} seeds)"
