"""Shared fixtures: real aligned faces from ../shared/data and a tiny Base + Heatmap pair trained once."""

import json
from pathlib import Path

import pytest
import torch

from ai_server.research import data
from ai_server.research.evaluate import evaluate
from ai_server.research.ship import ship
from ai_server.research.train import TrainConfig, train

torch.set_num_threads(2)
SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "smoke.json"


def pytest_sessionstart(session):
    root = data.data_dir()
    if not (root / "faces112").is_dir():
        raise pytest.UsageError(f"face data not found at {root}; set FACE_DATA_DIR")


@pytest.fixture(scope="session")
def faces() -> torch.Tensor:
    """32 real aligned faces of 8 CelebA training identities, uint8 (32, 3, 112, 112)."""
    everyone = data.training_identities()
    paths = [p for p in everyone.paths if "/celeba/" in p]
    return data.load_images(paths[:32])


def smoke_config(**overrides) -> TrainConfig:
    return TrainConfig.from_dict({**json.loads(SMOKE_CONFIG.read_text()), **overrides})


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """A Base model and a Heatmap model seeded from it, each a few steps on 6 identities."""
    root = tmp_path_factory.mktemp("runs")
    base = train(smoke_config(), root / "base", log=lambda _: None)
    heat = train(
        smoke_config(in_channels=4, heatmap_source=str(base), init_from=str(base)),
        root / "heatmap",
        log=lambda _: None,
    )
    return {"root": root, "base": base, "heatmap": heat}


@pytest.fixture(scope="session")
def tiny_weights(tiny_runs, tmp_path_factory) -> Path:
    """The tiny pair shipped like real weights: float16 files, manifest, calibration on val pairs."""
    root = tiny_runs["root"]
    for run in ("base", "heatmap"):
        evaluate(
            root / run / "model.pt",
            root / run / "metrics.json",
            closed_sets=(),
            pair_sets=("celeba_val",),
            pairs_per_fold=20,
            n_boot=20,
            log=lambda _: None,
        )
    out = tmp_path_factory.mktemp("weights")
    ship(root, out, {"tiny-base": "base", "tiny-heatmap": "heatmap"}, "tiny-heatmap", "test setup")
    return out
