"""The view-distillation path end to end on a few identities: the real teacher's targets per view, a
Base student matched to them in its served space, and a Heatmap student reading the Base's maps."""

import json

import pytest
import torch
from testkit import require_module

from ai_server.core.models import load_model
from ai_server.research import data
from ai_server.research.augment import AugmentConfig
from ai_server.research.teacher import view_targets
from ai_server.research.train import TrainConfig, train, training_set
from ai_server.research.views import render


@pytest.fixture(scope="module", autouse=True)
def dlib():
    """A training-only dependency (requirements-dev.lock): without it a skip here, a failure under CI=true."""
    return require_module("dlib", "the teacher is a training-only dependency (requirements-dev.lock)")


STUDENT = {
    "dataset": "distillation",
    "identities": 4,
    "holdout_fraction": 0.0,
    "embedding_dim": 128,
    "dropout": 0.0,
    "epochs": 2,
    "batch_size": 8,
    "lr": 0.05,
    "scale": 16.0,
    "margin": 0.2,
    "arcface_weight": 0.5,
    "distill_weight": 2.0,
    "distill_relation_weight": 1.0,
    "distill_projection": False,
    "distill_center": True,
    "teacher_views": 3,
    "monitor_identities": 5,
}


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_views_are_deterministic_and_their_targets_are_the_teachers(tmp_path):
    images = training_set(TrainConfig(dataset="distillation", identities=2))
    paths = images.paths[:6]
    crops = data.load_images(paths)
    views = torch.tensor([0, 1, 2, 3, 2, 5])
    first = render(crops, paths, views, AugmentConfig())
    assert torch.equal(first, render(crops, paths, views, AugmentConfig()))  # rebuilt from the seed
    assert torch.equal(first[0], crops[0]) and torch.equal(first[1], crops[1].flip(-1))
    assert not torch.equal(first[2], crops[2]) and not torch.equal(first[2], first[4])
    targets = view_targets(paths, 3, tmp_path, workers=1, chunk=4, log=lambda _: None)
    assert targets.shape == (6, 3, 128)
    # the cache answers a second time without a teacher, and a changed view set is not mistaken for it
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 6  # 2 chunks x 3 views
    assert torch.equal(view_targets(paths, 3, tmp_path, log=lambda _: None), targets)
    unit = torch.nn.functional.normalize(targets, dim=-1)
    assert (unit[:, 0] * unit[:, 1]).sum(-1).min() > 0.9  # an image and its mirror: the same person


def test_student_learns_the_teachers_views_and_resumes_exactly(tmp_path):
    cache = tmp_path / "targets"
    config = TrainConfig.from_dict({**STUDENT, "distill_cache": str(cache)})
    straight = train(config, tmp_path / "a", log=lambda _: None)
    train(config, tmp_path / "b", until_epoch=1, log=lambda _: None)
    resumed = train(config, tmp_path / "b", log=lambda _: None)
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log = _log(tmp_path / "a")
    assert [e["loss"] for e in log] == [e["loss"] for e in _log(tmp_path / "b")]
    assert all(0 <= e["monitor_top1"] <= 1 and "heldout_f1" not in e for e in log)
    model, head, cfg = load_model(straight)
    assert cfg["embedding_dim"] == 128 and len(cfg["classes"]) == 4  # served space = teacher's space
    assert not (tmp_path / "a" / "projection.pt").exists()
    heat = TrainConfig.from_dict(
        {
            **STUDENT,
            "distill_cache": str(cache),
            "in_channels": 4,
            "heatmap_source": str(straight),
            "init_from": str(straight),
            "epochs": 1,
        }
    )
    train(heat, tmp_path / "heat", log=lambda _: None)
    assert load_model(tmp_path / "heat" / "model.pt")[0].in_channels == 4
    assert list((tmp_path / "heat").parent.joinpath(".heatmap-cache").glob("views-*.npy"))


def test_cosine_term_alone_pulls_the_embedding_to_the_teacher(tmp_path):
    values = {**STUDENT, "arcface_weight": 0.0, "distill_relation_weight": 0.0, "epochs": 6, "lr": 0.1}
    config = TrainConfig.from_dict({**values, "distill_cache": str(tmp_path / "targets")})
    train(config, tmp_path / "run", log=lambda _: None)
    log = _log(tmp_path / "run")
    assert log[-1]["distill_cosine_loss"] < 0.8 * log[0]["distill_cosine_loss"], log


def test_a_student_without_projection_must_have_the_teachers_dimension(tmp_path):
    config = TrainConfig.from_dict({**STUDENT, "embedding_dim": 64, "distill_cache": str(tmp_path / "t")})
    with pytest.raises(ValueError, match="teacher's"):
        train(config, tmp_path / "run", log=lambda _: None)
