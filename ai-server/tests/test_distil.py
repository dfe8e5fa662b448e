"""Distillation from dlib's ResNet: the real teacher on a few faces. The training path with a stand-in
teacher, the flip replay and the report's findings need no dlib: test_distil_training.py."""

import pytest
import torch
from testkit import require_module

from ai_server.research import data
from ai_server.research.teacher import Teacher, cached_embeddings


@pytest.fixture(scope="module", autouse=True)
def dlib():
    """A training-only dependency (requirements-dev.lock): without it a skip here, a failure under CI=true."""
    return require_module("dlib", "the teacher is a training-only dependency (requirements-dev.lock)")


@pytest.fixture(scope="module")
def teacher():
    return Teacher()


def test_teacher_knows_identities_and_caches_by_content(teacher, tmp_path):
    """Two identities, two images each: the same person is closer than another; mirrors stay close."""
    train_set = data.training_identities()
    picks = [train_set.labels.index(y) + k for y in (0, 1) for k in (0, 1)]
    images = data.load_images([train_set.paths[i] for i in picks])
    emb = cached_embeddings(images, tmp_path, teacher=teacher, log=lambda _: None)
    assert emb.shape == (4, 2, 128)
    e = torch.nn.functional.normalize(emb[:, 0], dim=1)
    sims = e @ e.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[0, 3], sims
    assert sims[2, 3] > sims[2, 0] and sims[2, 3] > sims[2, 1], sims
    mirror = torch.nn.functional.normalize(emb[:, 1], dim=1)
    assert (e * mirror).sum(1).min() > 0.9  # an image and its mirror: the same person

    class Refuses:
        def embed(self, images):
            raise AssertionError("cached images must not reach the teacher")

    again = cached_embeddings(images[[3, 1]], tmp_path, teacher=Refuses(), log=lambda _: None)
    assert torch.equal(again, emb[[3, 1]])
