"""Shared fixtures: real aligned faces from ../shared/data, a tiny Base + Heatmap pair trained once, and
the gallery on each of its backends (embedded; PostgreSQL + Milvus on real engines started here)."""

import json
from pathlib import Path

import pytest
import torch
from testkit import require
from testkit.milvus import MilvusLite, require_milvus_lite
from testkit.postgres import PostgresCluster, missing_reason

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
            max_identities=20,  # the search calibration's minimum; all 62 take twice as long
            log=lambda _: None,
        )
    out = tmp_path_factory.mktemp("weights")
    ship(root, out, {"tiny-base": "base", "tiny-heatmap": "heatmap"}, "tiny-heatmap", "test setup")
    return out


@pytest.fixture(scope="session")
def pg_cluster():
    """One real PostgreSQL cluster for the session; each test makes its own database in it."""
    reason = missing_reason()
    require(reason is None, f"PostgreSQL: {reason}")
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def milvus(tmp_path_factory):
    """One real Milvus (milvus-lite's gRPC server) for the session; a gallery's collections are named by
    its database's gallery id, so tests do not meet each other's."""
    require_milvus_lite()
    with MilvusLite(tmp_path_factory.mktemp("milvus") / "data") as server:
        yield server


@pytest.fixture
def shared_location(request) -> dict[str, str]:
    """A fresh shared gallery: {"postgres_url", "milvus_uri"} (a new database, dropped afterwards, and
    the session's Milvus)."""
    cluster, server = request.getfixturevalue("pg_cluster"), request.getfixturevalue("milvus")
    with cluster.database("gallery") as url:
        yield {"postgres_url": url, "milvus_uri": server.uri}


@pytest.fixture(params=["embedded", "shared"])
def open_backend(request, tmp_path):
    """`open_backend(**options)`: a new `Backend` on one gallery per test, on each backend in turn; every
    call opens the same gallery again, as another process (a worker, a replica) would."""
    from ai_server.serving.gallery import backends

    location = request.getfixturevalue("shared_location") if request.param == "shared" else None
    opened = []

    def open_backend(index_kind: str = "auto"):
        if location is None:
            backend = backends.embedded(tmp_path / "gallery", index_kind)
        else:
            backend = backends.shared(location["postgres_url"], location["milvus_uri"], index_kind)
        opened.append(backend)
        return backend

    open_backend.kind = request.param
    open_backend.location = location
    yield open_backend
    for backend in opened:
        backend.close()
