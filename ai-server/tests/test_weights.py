"""Shipped weights: float16 files the service and the evaluation both trust only after a sha256 check."""

import shutil

import pytest
import torch
import torch.nn.functional as F

from ai_server.core.recognizer import Recognizer
from ai_server.core.weights import WeightsError, load_manifest, load_recognizer
from ai_server.research import data
from ai_server.research.ship import ship
from ai_server.serving.settings import default_weights_dir


def test_a_shipped_heatmap_model_embeds_like_its_run(tiny_runs, tiny_weights):
    faces = data.load_images(data.validation_identities().paths[:8]).float() / 255
    run = Recognizer.load(tiny_runs["heatmap"])
    shipped = Recognizer.load(tiny_weights / "tiny-heatmap.pt")  # what `make evaluate` loads
    served = load_recognizer(tiny_weights, "tiny-heatmap", load_manifest(tiny_weights))
    blob = torch.load(tiny_weights / "tiny-heatmap.pt", weights_only=True)
    assert {v.dtype for v in blob["model"].values() if v.is_floating_point()} == {torch.float16}
    expected = run.embed(faces, run.heatmaps(faces))
    for recognizer in (shipped, served):
        got = recognizer.embed(faces, recognizer.heatmaps(faces))
        assert F.cosine_similarity(got, expected).min() > 0.99


def test_a_changed_byte_is_refused(tiny_weights, tmp_path):
    copy = shutil.copytree(tiny_weights, tmp_path / "w")
    load_manifest(copy)
    blob = bytearray((copy / "tiny-base.pt").read_bytes())
    blob[-100] ^= 1
    (copy / "tiny-base.pt").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256"):
        load_manifest(copy)


def test_ship_needs_the_heatmap_source_and_any_order_works(tiny_runs, tmp_path):
    root = tiny_runs["root"]
    with pytest.raises(ValueError, match="must be shipped too"):
        ship(root, tmp_path / "a", {"tiny-heatmap": "heatmap"}, "tiny-heatmap", "test")
    ship(root, tmp_path / "b", {"tiny-heatmap": "heatmap", "tiny-base": "base"}, "tiny-heatmap", "test")
    assert load_manifest(tmp_path / "b")["models"]["tiny-heatmap"]["heatmap_source"] == "tiny-base"


def test_the_repository_ships_verified_weights_with_calibration():
    manifest = load_manifest(default_weights_dir())
    sizes = sum(entry["bytes"] for entry in manifest["models"].values())
    assert sizes < 25 * 2**20
    default = manifest["models"][manifest["default"]]
    assert default["heatmap_source"] in manifest["models"]
    calibration = default["calibration"]["embedding"]
    assert 0 < calibration["no_match_threshold"] < 1 and calibration["a"] > 0
    assert default["training"]["command"].startswith("ai-server ship")
