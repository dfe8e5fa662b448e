"""Safe decoding of uploaded photos: size and pixel limits, JPEG/PNG/WebP only, EXIF orientation applied.

Every failure is a `ServiceError` whose code says what is wrong with the file (`invalid_image`,
`image_too_large`, `unsupported_media_type`), so a bad upload is always a clear refusal and never a
traceback; the HTTP layer alone turns the code into a status.
"""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import Code, ServiceError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_ASPECT = 100  # longer side / shorter side


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
    """Bytes of a JPEG/PNG/WebP file -> RGB uint8 array (H, W, 3), upright per its EXIF orientation.

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
            return _upright_rgb(_open_within_limits(data, max_pixels))
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ServiceError(Code.IMAGE_TOO_LARGE, "the image decompresses to too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ServiceError(Code.INVALID_IMAGE, f"the {kind} file could not be decoded ({err})") from None


def _open_within_limits(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse what is not an accepted photo before decoding pixels."""
    image = Image.open(io.BytesIO(data))
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
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated WebP/PNG: the first frame
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits (convert() clips to white)
        image = Image.fromarray((np.asarray(image, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8))
    return np.asarray(image.convert("RGB"))
