"""Shared fixtures: real aligned faces from ../shared/data."""

import pytest
import torch

from ai_server import data

torch.set_num_threads(2)


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
