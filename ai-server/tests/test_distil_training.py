"""Distillation without dlib: the training path end to end with a stand-in teacher (resume, projection,
a Heatmap student), the cosine term pulling the student to it, the flip replay and the report's findings.
Never skipped; the real teacher's own test is test_distil.py."""

import json

import torch
from conftest import smoke_config

from ai_server.core.models import load_model
from ai_server.research import data
from ai_server.research.teacher import cached_embeddings
from ai_server.research.train import _flips, train


class PixelTeacher:
    """A stand-in teacher for the training smoke tests: a fixed random projection of the 8x8 thumbnail,
    so that the target is a learnable function of the image (and a mirror gets another target)."""

    def embed(self, images):
        thumbs = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 8).flatten(1)
        proj = torch.randn(thumbs.shape[1], 128, generator=torch.Generator().manual_seed(0))
        return torch.nn.functional.normalize(thumbs @ proj, dim=1).numpy()


def _distil_config(**overrides):
    return smoke_config(**{"distill_weight": 2.0, "distill_relation_weight": 1.0, **overrides})


def _prefill(cache, config):
    everyone = data.training_identities().evenly_spaced(config.identities)
    train_set, _ = data.holdout_split(everyone, config.holdout_fraction, config.holdout_seed)
    cached_embeddings(data.load_images(train_set.paths), cache, teacher=PixelTeacher(), log=lambda _: None)


def test_distilled_training_resumes_exactly_and_ships_no_projection(tmp_path):
    cache = tmp_path / "cache"
    config = _distil_config(distill_cache=str(cache), distill_center=True)
    _prefill(cache, config)
    straight = train(config, tmp_path / "a", log=lambda _: None)
    train(config, tmp_path / "b", until_epoch=1, log=lambda _: None)
    resumed = train(config, tmp_path / "b", log=lambda _: None)
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in log] == [
        json.loads(line)["loss"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    ]
    assert all(0 <= e["distill_cosine_loss"] <= 2 and e["distill_relation_loss"] >= 0 for e in log)
    # the projection head is training only: beside the model, not in the model file
    assert (tmp_path / "a" / "projection.pt").exists()
    model, _, cfg = load_model(straight)
    assert not any(k.startswith("projection") for k in a["model"]) and "projection" not in a
    assert cfg["train_config"]["distill_weight"] == 2.0
    # a Heatmap student seeded from the distilled Base starts from its projection too
    heat = _distil_config(
        distill_cache=str(cache),
        in_channels=4,
        heatmap_source=str(straight),
        init_from=str(straight),
        epochs=1,
    )
    train(heat, tmp_path / "heat", log=lambda _: None)
    assert load_model(tmp_path / "heat" / "model.pt")[0].in_channels == 4


def test_distillation_pulls_the_projection_towards_the_teacher(tmp_path):
    """With the ArcFace term off, the cosine term alone must fall: the student learns the teacher."""
    cache = tmp_path / "cache"
    config = _distil_config(
        distill_cache=str(cache), arcface_weight=0.0, distill_relation_weight=0.0, epochs=5, lr=0.1
    )
    _prefill(cache, config)
    train(config, tmp_path / "run", log=lambda _: None)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["distill_cosine_loss"] < 0.8 * log[0]["distill_cosine_loss"], log


def test_flip_replay_matches_the_augmentation():
    """The teacher target of a mirrored crop is the mirror's: `_flips` must predict augment's flips."""
    from ai_server.research.augment import AugmentConfig, augment

    cfg = AugmentConfig(scale=(1.0, 1.0), ratio=(1.0, 1.0), rotation=0.0, brightness=0, contrast=0)
    cfg = AugmentConfig(**{**cfg.__dict__, "saturation": 0, "blur": 0, "erase": 0})
    g = torch.Generator().manual_seed(3)
    x = torch.rand(16, 3, 8, 8)
    flips = _flips(16, cfg, g)
    out, _ = augment(x, None, 8, cfg, g)
    assert 0 < flips.sum() < 16
    for i in range(16):
        expected = x[i].flip(-1) if flips[i] else x[i]
        assert torch.allclose(out[i], expected, atol=1e-5), i


def test_report_states_the_gap_closed_and_the_heatmap_comparison():
    from ai_server.research.report.distillation import findings as _distil_findings

    def metrics(lfw, val):
        pairs = {
            name: {"embedding": {"auc": auc, "auc_ci": [auc - 0.01, auc + 0.01]}}
            for name, auc in (("lfw", lfw), ("celeba_val", val))
        }
        ident = {"celeba_val": {"embedding": {"top1": 0.3, "top5": 0.6}}}
        return {"verification": pairs, "identification": ident}

    teacher, paper = {"metrics": metrics(1.0, 0.99)}, {"metrics": metrics(0.90, 0.88)}
    full = [
        {"name": "shufflenet-base-x-s0", "metrics": metrics(0.92, 0.89)},
        {"name": "shufflenet-heatmap-x-s0", "metrics": metrics(0.93, 0.935)},
    ]
    lfw, val, _, heat = _distil_findings(teacher, paper, full)
    assert "(shufflenet-heatmap-x-s0) 0.930: +0.030, +30% of the gap" in lfw  # chosen by val, not LFW
    assert "+0.055, +50% of the gap" in val
    assert "0.935 vs 0.890 (+0.045; the 95% CIs do not overlap)" in heat
