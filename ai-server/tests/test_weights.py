"""Shipped weights: float16 files the service and the evaluation both trust only after a sha256 check."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from ai_server.core.recognizer import Recognizer
from ai_server.core.weights import WeightsError, default_weights_dir, load_manifest, load_recognizer
from ai_server.research import data
from ai_server.research.ship import ship


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


def test_ship_keeps_named_models_removes_stale_files_and_measures_the_shipped_file(
    tiny_runs, tiny_weights, tmp_path
):
    out = shutil.copytree(tiny_weights, tmp_path / "w")
    (out / "retired-model.pt").write_bytes(b"a model no entry names")
    ship(
        tiny_runs["root"],
        out,
        {"tiny-base-2": "base"},
        "tiny-heatmap",
        "test",
        keep=("tiny-base", "tiny-heatmap"),
    )
    manifest = load_manifest(out)
    assert set(manifest["models"]) == {"tiny-base", "tiny-heatmap", "tiny-base-2"}
    assert not (out / "retired-model.pt").exists()
    entry = manifest["models"]["tiny-base-2"]
    assert entry["metrics_of"] == "the shipped float16 file"
    assert entry["calibration"]["embedding"]["fitted_on"] == "celeba_val"  # never LFW
    shipped = json.loads((tiny_runs["root"] / "base" / "metrics-shipped.json").read_text())
    assert shipped["model"]["sha256"] == entry["sha256"]
    assert (
        entry["metrics"]["verification"]["celeba_val"]["auc"]
        == shipped["verification"]["celeba_val"]["embedding"]["auc"]
    )


def test_pick_prints_the_run_best_at_a_metric(tmp_path, capsys):
    from ai_server.cli import main

    for run, top1 in (("a", 0.4), ("b", 0.7), ("c", 0.5)):
        (tmp_path / run).mkdir()
        metrics = {"identification": {"celeba_ext_val": {"embedding": {"top1": top1}}}}
        (tmp_path / run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["pick", *(str(tmp_path / r) for r in "abc")]) == 0
    assert capsys.readouterr().out.strip() == "b"
