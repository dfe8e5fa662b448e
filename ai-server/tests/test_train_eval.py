import json

import pytest
import torch
from conftest import smoke_config

from ai_server.cli import main
from ai_server.core.models import load_model, sha256_file
from ai_server.core.recognizer import Recognizer
from ai_server.research.evaluate import evaluate
from ai_server.research.perturb import ALL_CONDITIONS
from ai_server.research.train import train


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_loss_falls(tmp_path):
    config = smoke_config(epochs=6, margin=0.0, margin_warmup_epochs=0.0, lr=0.1)
    train(config, tmp_path / "run", log=lambda _: None)
    losses = [e["loss"] for e in _log(tmp_path / "run")]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    straight = train(smoke_config(), tmp_path / "a", log=lambda _: None)
    train(smoke_config(), tmp_path / "b", until_epoch=1, log=lambda _: None)  # "cut off" after epoch 1
    assert len(_log(tmp_path / "b")) == 1
    resumed = train(smoke_config(), tmp_path / "b", log=lambda _: None)
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [e["loss"] for e in _log(tmp_path / "a")] == [e["loss"] for e in _log(tmp_path / "b")]


def test_run_folder_refuses_another_configuration(tmp_path):
    train(smoke_config(), tmp_path / "run", until_epoch=1, log=lambda _: None)
    with pytest.raises(ValueError, match="another configuration"):
        train(smoke_config(lr=0.5), tmp_path / "run", log=lambda _: None)


def test_checkpoint_reloads_to_identical_outputs(tiny_runs, faces):
    state = torch.load(tiny_runs["heatmap"].parent / "state.pt", weights_only=False)
    model, _, config = load_model(tiny_runs["heatmap"])
    for key, value in state["model"].items():
        assert torch.equal(model.state_dict()[key], value)
    rgb = faces[:8].float() / 255
    first, second = Recognizer.load(tiny_runs["heatmap"]), Recognizer.load(tiny_runs["heatmap"])
    assert torch.equal(first.embed(rgb), second.embed(rgb))
    assert config["heatmap"]["sha256"] == sha256_file(tiny_runs["base"])
    assert config["heatmap"]["target"] == "embedding_norm"


def test_heatmap_source_is_verified(tiny_runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_runs["root"], copy)
    with open(copy / "base" / "model.pt", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        Recognizer.load(copy / "heatmap" / "model.pt")


def test_evaluation_writes_every_condition(tiny_runs, tmp_path):
    out = tmp_path / "metrics.json"
    evaluate(tiny_runs["heatmap"], out, repeats=2, pairs_per_fold=5, n_boot=50, log=lambda _: None)
    metrics = json.loads(out.read_text())
    names = [c.name for c in ALL_CONDITIONS]
    for closed_set in ("heldout", "yale_dark"):
        assert list(metrics["closed_set"][closed_set]) == names
        for report in metrics["closed_set"][closed_set].values():
            assert 0 <= report["f1"] <= 1 and report["f1_ci"][0] <= report["f1"] <= report["f1_ci"][1]
        ablation = metrics["ablation"][closed_set]
        assert set(ablation) == {"occlusion_0.3", "brightness_1.15", "noise_0.1"}
        assert all(set(modes) == {"normal", "zero", "random", "shuffle"} for modes in ablation.values())
    assert (
        metrics["closed_set"]["heldout"]["occlusion_0.3"]["n"]
        == 2 * metrics["closed_set"]["heldout"]["original"]["n"]
    )
    for pairs in ("celeba_val", "lfw"):
        views = metrics["verification"][pairs]
        assert set(views) == {"embedding", "embedding_noflip", "heatmap_vector"}
        assert all(r["pairs"] == 100 and 0 <= r["auc"] <= 1 for r in views.values())
    assert "calibration" in metrics["verification"]["celeba_val"]["embedding"]
    assert "calibration" not in metrics["verification"]["lfw"]["embedding"]  # LFW never tunes anything
    identification = metrics["identification"]["celeba_val"]["embedding"]
    assert identification["gallery"] == 62 and identification["queries"] == 1272 - 62
    assert 0 <= identification["top1"] <= identification["top5"] <= 1
    assert list(metrics["identification"]) == ["celeba_val"]
    assert metrics["model"]["eval_heatmap_target"] == "embedding_norm"
    assert metrics["protocol"]["heatmap_from"] == "perturbed image"


def test_cli_train_and_evaluate(tmp_path, tiny_runs, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(smoke_config().to_dict()))
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--set", "epochs=1"]) == 0
    assert _log(tmp_path / "run")[0]["epoch"] == 1
    out = tmp_path / "m.json"
    args = ["evaluate", str(tiny_runs["base"]), "--out", str(out), "--conditions", "original", "noise_0.1"]
    args += ["--pairs", "celeba_val", "--pairs-per-fold", "3", "--bootstrap", "20", "--max-identities", "20"]
    assert main(args) == 0
    metrics = json.loads(out.read_text())
    identification = metrics["identification"]["celeba_val"]["embedding"]
    assert metrics["protocol"]["max_identities"] == 20 and identification["gallery"] == 20
    assert "calibration" in identification  # 20 identities: still enough to fit the search probability
    assert list(metrics["closed_set"]["heldout"]) == ["original", "noise_0.1"]
    assert metrics["ablation"] == {}  # a Base model has no 4th channel to ablate
    assert main(["train", str(config), "--out", str(tmp_path / "x"), "--set", "colour=red"]) == 2
    assert "unknown training options" in capsys.readouterr().err
