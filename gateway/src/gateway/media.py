"""Uploaded images: checked before anything is stored or forwarded, then kept content-addressed.

The type comes from the magic bytes (the declared content type and file name are never trusted), and only
that format's decoder may open it; the pixel count comes from the header via Pillow, without decoding the
image. What is stored of a query photo is not the upload: `for_storage` decodes it (a JPEG reduced by its
decoder), turns it upright, shrinks it to STORED_MAX_SIDE and encodes it again as a plain JPEG, so no EXIF
(GPS position, camera, time), comment, ICC profile or trailing byte of the upload is kept, and two
uploads of the same picture are one file. Files are named by their sha256, readable by their owner only,
and written to a temporary file, fsynced and renamed, so a crash never leaves a half-written image.
"""

import hashlib
import io
import os
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError

TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
STORED_MAX_SIDE = 1024  # enough to recognise the search in the history; far less than a camera's
STORED_QUALITY = 85
_encoding = threading.BoundedSemaphore(2)  # decoded photos in memory at once (a 12 Mpx PNG is 48 MB)


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
        with Image.open(io.BytesIO(data), formats=[FORMATS[kind]]) as image:
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


def for_storage(data: bytes) -> bytes:
    """A checked upload as it is kept: upright, at most STORED_MAX_SIDE, JPEG, without any metadata.
    Blocking (call it in a thread); at most two run at once. A file whose pixels cannot be decoded is a
    400 `invalid_image`."""
    kind = sniff(data)
    with _encoding:
        try:
            rgb = _decoded(data, kind)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise ApiError(400, "invalid_image", f"the {kind.upper()} image cannot be read") from None
    rgb.info.clear()  # convert() copied the upload's info (a JPEG comment would be written back)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=STORED_QUALITY)
    return out.getvalue()


def _decoded(data: bytes, kind: str) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=[FORMATS[kind]]) as image:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        if kind == "jpeg":  # the decoder's own scaling: the full-size pixels never exist
            image.draft(None, _draft_size(*image.size))
        image.load()
        if image.mode.startswith("I"):  # 16-bit greyscale: to 8 bits (convert() would clip to white)
            image = image.convert("I").point(lambda v: v / 257).convert("L")
        elif image.mode in ("1", "P"):
            image = image.convert("RGB")
        image.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        ImageOps.exif_transpose(image, in_place=True)
        return image.convert("RGB")


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The smallest size the JPEG decoder may scale to and still leave STORED_MAX_SIDE to shrink from."""
    scale = 1
    while scale < 8 and max(width, height) // (2 * scale) >= STORED_MAX_SIDE:
        scale *= 2
    return width // scale, height // scale


class ImageStore:
    """Files named `<root>/<sha[:2]>/<sha>`: the same photo twice is stored once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> str:
        sha = sha256(data)
        target = self.path(sha)
        if target.exists():
            os.utime(target)  # fresh again, so the orphan sweep leaves it alone
            return sha
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")  # mode 0600
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

    def delete(self, sha: str) -> bool:
        """Whether there was a file to remove."""
        try:
            self.path(sha).unlink()
            return True
        except FileNotFoundError:
            return False

    def stale(self, min_age_s: float) -> list[Path]:
        """Files (and temp files) older than min_age_s: candidates for the orphan sweep."""
        now = time.time()
        return [p for p in self.root.glob("*/*") if now - p.stat().st_mtime > min_age_s]
