"""Test photos from the face data folder (testkit): each aligned 112x112 crop of a CelebA validation
identity is scaled onto a larger canvas, so the ai-server's real detector has a face to find."""

from pathlib import Path

from testkit import celeba_people, encode, sample_photo

__all__ = ["encode", "people", "photo"]


def people() -> dict[str, list[Path]]:
    """Validation identities with at least 4 photos, each with its photos in a stable order."""
    return dict(sorted(celeba_people("celeba_val", min_photos=4).items()))


def photo(path: Path, fmt: str = "JPEG", size: int = 300, face: int = 168) -> bytes:
    return sample_photo(path, size, face, fmt)
