"""Safe decoding of uploaded photos: size and pixel limits, JPEG/PNG/WebP only, EXIF orientation applied,
bounded memory.

Every failure is a `ServiceError` whose code says what is wrong with the file (`invalid_image`,
`image_too_large`, `unsupported_media_type`), so a bad upload is always a clear refusal and never a
traceback; the HTTP layer alone turns the code into a status.

Memory: a photo is decoded at most `MAX_DECODED_SIDE` pixels on its long side (a JPEG by its decoder's DCT
scaling, 1/2 to 1/8, so the full size never exists in memory; PNG and WebP are reduced right after
decoding), with one copy at a time, and at most `limit_decoding(n)` photos per process are decoded at once
(the others wait, within their request's deadline). The detector sees 640 px and the aligned face is
112 px, so nothing downstream needs more; `upload_scale` converts positions back to the upload's pixels.
"""

import contextvars
import io
import threading
import time
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import Code, ServiceError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_ASPECT = 100  # longer side / shorter side
MAX_DECODED_SIDE = 1600  # a face over 7% of the long side keeps its 112 px
DEFAULT_WAIT_S = 30.0  # for a decode slot, outside a request (command line)
# The monotonic time by which the current request must be done (set per request by the HTTP layer).
DECODE_DEADLINE: contextvars.ContextVar = contextvars.ContextVar("decode_deadline", default=None)
_slots = threading.BoundedSemaphore(2)


def limit_decoding(concurrency: int) -> None:
    """At most `concurrency` photos decoded at once in this process (AI_SERVER_DECODE_CONCURRENCY)."""
    global _slots
    _slots = threading.BoundedSemaphore(max(1, concurrency))


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's magic bytes (declared types and file names are not trusted)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Bytes of a JPEG/PNG/WebP file -> RGB uint8 array (H, W, 3), upright per its EXIF orientation, at
    most MAX_DECODED_SIDE on its long side.

    The byte size, the magic bytes and the header's pixel count are checked before any pixel is
    decoded, so a decompression bomb costs nothing."""
    if not data:
        raise ServiceError(Code.INVALID_IMAGE, "the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ServiceError(Code.IMAGE_TOO_LARGE, f"the image is {len(data)} bytes; the limit is {max_bytes}")
    kind = sniff_format(data)
    if kind is None:
        raise ServiceError(Code.UNSUPPORTED_MEDIA_TYPE, "only JPEG, PNG and WebP images are accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open_within_limits(data, kind, max_pixels)
            with _decode_slot():
                return _upright_rgb(image)
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ServiceError(Code.IMAGE_TOO_LARGE, "the image decompresses to too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ServiceError(Code.INVALID_IMAGE, f"the {kind} file could not be decoded ({err})") from None


def upload_scale(data: bytes, decoded: np.ndarray) -> float:
    """Upload pixels per decoded pixel (1.0 unless the photo was decoded reduced), for reporting face
    positions in the upload's own pixels. Reads the header only."""
    kind = sniff_format(data)
    if kind is None:
        return 1.0
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            longest = max(image.size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return 1.0
    return longest / max(decoded.shape[:2]) if decoded.size else 1.0


class _decode_slot:
    """One of the process's decode slots, waited for until the request's deadline (503 `overloaded`)."""

    def __enter__(self) -> None:
        deadline = DECODE_DEADLINE.get()
        wait = DEFAULT_WAIT_S if deadline is None else max(0.0, deadline - time.monotonic())
        self.slots = _slots
        if not self.slots.acquire(timeout=wait):
            raise ServiceError(Code.OVERLOADED, "too many photos are being decoded; try again shortly")

    def __exit__(self, *exc) -> None:
        self.slots.release()


def _open_within_limits(data: bytes, kind: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only), with only the decoder its magic bytes name, and refuse what is not an
    accepted photo before decoding pixels."""
    image = Image.open(io.BytesIO(data), formats=[kind])
    if image.format not in ALLOWED_FORMATS:
        raise ServiceError(Code.UNSUPPORTED_MEDIA_TYPE, "only JPEG, PNG and WebP images are accepted")
    width, height = image.size
    if width * height > max_pixels:
        raise ServiceError(
            Code.IMAGE_TOO_LARGE, f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):  # the detector's resize needs >= 1 px
        raise ServiceError(
            Code.INVALID_IMAGE, f"the image is {width}x{height} pixels: not a photo of a person"
        )
    return image


def _upright_rgb(image: Image.Image) -> np.ndarray:
    """Decode reduced, upright, 8-bit RGB, never holding more than two copies of the pixels."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated WebP/PNG: the first frame
    _draft(image)
    image.load()
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits (convert() clips to white)
        grey = (np.asarray(image, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8)
        image = _with_exif(Image.fromarray(grey), image)
    elif image.mode in ("1", "P") and max(image.size) > MAX_DECODED_SIDE:
        image = image.convert("RGB")  # resizing a palette would pick nearest pixels
    image.thumbnail((MAX_DECODED_SIDE, MAX_DECODED_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _draft(image: Image.Image) -> None:
    """A JPEG larger than needed is decoded at 1/2, 1/4 or 1/8 of its size by the decoder itself, never
    below MAX_DECODED_SIDE on its long side (the full-size pixels never exist)."""
    width, height = image.size
    scale = 1
    while scale < 8 and max(width, height) // (2 * scale) >= MAX_DECODED_SIDE:
        scale *= 2
    if image.format == "JPEG" and scale > 1:
        image.draft(None, (width // scale, height // scale))


def _with_exif(image: Image.Image, source: Image.Image) -> Image.Image:
    """`image` carrying `source`'s EXIF, so its orientation still applies."""
    if "exif" in source.info:
        image.info["exif"] = source.info["exif"]
    return image
