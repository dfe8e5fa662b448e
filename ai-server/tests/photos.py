"""Test photos made from the aligned crops of ../shared/data (see `data.sample_photo`)."""

import io

from PIL import Image

from ai_server.research import data
from ai_server.research.data import sample_photo as photo  # noqa: F401 (the tests' name for it)


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def by_identity(image_set: data.ImageSet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, label in zip(image_set.paths, image_set.labels, strict=True):
        out.setdefault(image_set.classes[label], []).append(path)
    return out
