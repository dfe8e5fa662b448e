"""Test photos made from the aligned crops of ../shared/data: each crop is scaled and placed on a larger
canvas, so that the real detector and aligner have a face to find, as in an uploaded photo."""

import io

from PIL import Image

from ai_server import data


def photo(path: str, size: int = 300, face: int = 168, fmt: str = "JPEG") -> bytes:
    crop = Image.open(data.data_dir() / path).convert("RGB").resize((face, face), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (40, 40, 40))
    canvas.paste(crop, ((size - face) // 2, (size - face) // 3))
    buffer = io.BytesIO()
    canvas.save(buffer, fmt)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def by_identity(image_set: data.ImageSet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, label in zip(image_set.paths, image_set.labels, strict=True):
        out.setdefault(image_set.classes[label], []).append(path)
    return out
