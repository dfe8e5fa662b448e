"""Test photos: the upload-style sample photos and image encoding are testkit's (testing/), shared with the
other suites; `by_identity` groups an ai-server image set by person."""

from testkit import encode
from testkit import sample_photo as photo

from ai_server.research import data

__all__ = ["by_identity", "encode", "photo"]


def by_identity(image_set: data.ImageSet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, label in zip(image_set.paths, image_set.labels, strict=True):
        out.setdefault(image_set.classes[label], []).append(path)
    return out
