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


def _synthetic_metrics(seed: int, noise: float) -> dict:
    """Metrics of the students' protocol made by the real evaluation code from synthetic face vectors."""
    import torch

    from ai_server.research import data
    from ai_server.research.evaluate import identify, verify_pairs

    g = torch.Generator().manual_seed(seed)
    out = {"verification": {}, "identification": {}, "model": {"sha256": f"{seed:064x}"}}
    for name, identities in (("celeba_ext_val", data.celeba_ext_validation()), ("celeba_val", None)):
        pairs = data.read_pairs(name, per_fold=30)
        paths = sorted(set(pairs.images()) | set(identities.paths if identities else []))
        people = sorted({p.split("/")[2] for p in paths})
        centre = {p: torch.randn(16, generator=g) for p in people}
        v = torch.stack([centre[p.split("/")[2]] + noise * torch.randn(16, generator=g) for p in paths])
        v = {"embedding": torch.nn.functional.normalize(v, dim=1)}
        index = {p: i for i, p in enumerate(paths)}
        out["verification"][name] = verify_pairs(v, index, pairs, 20, True, identity_ci=True)
        if identities:
            ordered = {"embedding": v["embedding"][[index[p] for p in identities.paths]]}
            out["identification"][name] = identify(ordered, identities, 0, 20, identity_ci=True)
    out["verification"]["lfw"] = out["verification"]["celeba_val"]
    out["identification"]["celeba_val"] = {"embedding": {"top1": 0.5, "top5": 0.7}}
    return out


def test_the_students_section_states_the_comparison_from_the_numbers(tmp_path):
    from ai_server.research.report.students import section

    results = tmp_path / "results"
    config = {
        "arch": "shufflenet_v2_x1_0",
        "in_channels": 3,
        "embedding_dim": 128,
        "dropout": 0.0,
        "epochs": 2,
    }
    log = [{"epoch": e, "train_seconds": 60, "images_per_s": 100, "device": "cpu", "threads": 1,
            "distill_cosine_loss": 0.5 / e, "monitor_top1": 0.2 * e} for e in (1, 2)]  # fmt: skip
    runs = {
        "teacher": (_synthetic_metrics(0, 0.3), None),
        "base-arc0-s0": (_synthetic_metrics(1, 1.0), {**config, "arcface_weight": 0.0}),
        "heatmap-s0": (_synthetic_metrics(2, 0.8), {**config, "arcface_weight": 0.0, "in_channels": 4}),
        "control-s0": (_synthetic_metrics(3, 0.9), {**config, "arcface_weight": 0.0}),
        "base-arc1-s0": (None, {**config, "arcface_weight": 1.0, "epochs": 30}),  # a probe: logs only
    }
    runs["heatmap-s0"][1]["init_from"] = "runs/students/base-arc0-s0/model.pt"
    for name, (metrics, cfg) in runs.items():
        folder = results / "students" / name
        folder.mkdir(parents=True)
        if metrics:
            (folder / "metrics.json").write_text(json.dumps(metrics))
        if cfg:
            (folder / "config.json").write_text(json.dumps(cfg))
            (folder / "log.jsonl").write_text("\n".join(json.dumps(e) for e in log))
    (tmp_path / "figures").mkdir()
    text = section(results, tmp_path / "figures")
    best = runs["heatmap-s0"][0]["identification"]["celeba_ext_val"][
        "embedding"
    ]  # least noise of the students
    assert f"Served student on celeba_ext val (heatmap-s0): one-shot top-1 {best['top1']:.3f}" in text
    assert "Heatmap student vs its equal-budget RGB control (heatmap-s0 vs control-s0)" in text
    assert "| ShuffleNetV2 x1.0 Heatmap | heatmap-s0 |" in text
    assert "| heatmap-s0 | 1,385,148 | 3-4 (seeded by base-arc0-s0) |  |" in text
    assert (
        "weight 0: monitor top-1 0.400, 1 - cos to the teacher 0.250; weight 1: monitor top-1 0.400" in text
    )
    assert "base-arc1-s0 |" not in text.split("### As shipped")[0]  # a probe has no evaluation row
    assert "galleries of 1 to" in text and "ECE, top-1 candidates" in text
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {
        "roc_students.png",
        "students_gallery_size.png",
        "students_epochs.png",
        "search_reliability.png",
    } <= figures
