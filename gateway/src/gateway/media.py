"""Uploaded images: checked before anything is stored or forwarded, then kept content-addressed.

The type comes from the magic bytes (the declared content type and file name are never trusted); the
pixel count from the header via Pillow, without decoding the image. Files are named by their sha256 and
written to a temporary file, fsynced and renamed, so a crash never leaves a half-written image.
"""

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import ApiError

TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> str:
    """The image's kind (jpeg, png, webp), or an ApiError that says what is wrong with it."""
    if not data:
        raise ApiError(400, "invalid_image", "the image is empty")
    if len(data) > max_bytes:
        raise ApiError(413, "image_too_large", f"the image is larger than {max_bytes} bytes")
    kind = sniff(data)
    if kind is None:
        raise ApiError(415, "unsupported_media_type", "send a JPEG, PNG or WebP image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise ApiError(413, "image_too_large", f"the image has more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ApiError(400, "invalid_image", f"the {kind.upper()} image cannot be read") from None
    if width * height > max_pixels:
        raise ApiError(413, "image_too_large", f"the image has more than {max_pixels} pixels")
    return kind


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ImageStore:
    """Files named `<root>/<sha[:2]>/<sha>`: the same photo twice is stored once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> str:
        sha = sha256(data)
        target = self.path(sha)
        if target.exists():
            os.utime(target)  # fresh again, so the orphan sweep leaves it alone
            return sha
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def delete(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)

    def stale(self, min_age_s: float) -> list[Path]:
        """Files (and temp files) older than min_age_s: candidates for the orphan sweep."""
        now = time.time()
        return [p for p in self.root.glob("*/*") if now - p.stat().st_mtime > min_age_s]
