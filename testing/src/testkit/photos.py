"""Upload-style photos from the aligned 112x112 crops of the face data folder (`paths.data_dir`)."""

import io
import os
from functools import cache
from pathlib import Path

from PIL import Image

from .paths import data_dir


def sample_canvas(path: str | os.PathLike, size: int = 300, face: int = 168) -> Image.Image:
    """An aligned crop (relative to the data folder, or absolute) scaled and placed on a larger canvas, so
    that the real detector and aligner have a face to find, as in an uploaded photo."""
    with Image.open(data_dir() / path) as image:
        crop = image.convert("RGB").resize((face, face), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (40, 40, 40))
    canvas.paste(crop, ((size - face) // 2, (size - face) // 3))
    return canvas


def sample_photo(
    path: str | os.PathLike, size: int = 300, face: int = 168, fmt: str = "JPEG", **options
) -> bytes:
    """`sample_canvas` encoded as an upload (`options` go to Pillow's save, e.g. quality)."""
    buffer = io.BytesIO()
    sample_canvas(path, size, face).save(buffer, fmt, **options)
    return buffer.getvalue()


@cache
def celeba_people(split: str = "celeba_val", min_photos: int = 1) -> dict[str, list[Path]]:
    """The CelebA identities of `splits/<split>_ids.txt` with at least `min_photos` crops, in that file's
    order (numeric), each with its crops (absolute paths) sorted by name."""
    root = data_dir()
    ids = (root / "splits" / f"{split}_ids.txt").read_text().split()
    people = {i: sorted((root / "faces112" / "celeba" / i).glob("*.jpg")) for i in ids}
    return {i: paths for i, paths in people.items() if len(paths) >= min_photos}
