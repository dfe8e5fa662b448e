"""Test photos from ../shared/data ($FACE_DATA_DIR): each aligned 112x112 crop of a CelebA validation
identity is scaled onto a larger canvas, so the ai-server's real detector has a face to find."""

import io
import os
from functools import cache
from pathlib import Path

from PIL import Image

from ai_server.research.data import sample_photo  # the test stack runs the ai-server from the same venv

REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(os.environ.get("FACE_DATA_DIR") or REPO.parent / "shared" / "data")


@cache
def people() -> dict[str, list[Path]]:
    """Validation identities with at least 4 photos, each with its photos in a stable order."""
    root = data_dir()
    ids = (root / "splits" / "celeba_val_ids.txt").read_text().split()
    out = {i: sorted((root / "faces112" / "celeba" / i).glob("*.jpg")) for i in ids}
    return {i: paths for i, paths in sorted(out.items()) if len(paths) >= 4}


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(path: Path, fmt: str = "JPEG", size: int = 300, face: int = 168) -> bytes:
    return sample_photo(path, size, face, fmt)
