"""Safe decoding of uploaded photos: size and pixel limits, JPEG/PNG/WebP only, EXIF orientation applied.

Every failure is an `ImageError` carrying the HTTP status and error code the API returns, so a bad upload
is always a clear 4xx and never a traceback.
"""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_ASPECT = 100  # longer side / shorter side


class ImageError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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
    """Bytes of a JPEG/PNG/WebP file -> RGB uint8 array (H, W, 3), upright per its EXIF orientation."""
    if not data:
        raise ImageError(400, "invalid_image", "the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(413, "image_too_large", f"the image is {len(data)} bytes; the limit is {max_bytes}")
    kind = sniff_format(data)
    if kind is None:
        raise ImageError(415, "unsupported_media_type", "only JPEG, PNG and WebP images are accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageError(415, "unsupported_media_type", "only JPEG, PNG and WebP images are accepted")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    413,
                    "image_too_large",
                    f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels",
                )
            if max(width, height) > MAX_ASPECT * min(width, height):  # the detector's resize needs >= 1 px
                raise ImageError(
                    400, "invalid_image", f"the image is {width}x{height} pixels: not a photo of a person"
                )
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # animated WebP/PNG: the first frame
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits (convert() clips to white)
                image = Image.fromarray(
                    (np.asarray(image, dtype=np.float32) / 257).clip(0, 255).astype(np.uint8)
                )
            return np.asarray(image.convert("RGB"))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(413, "image_too_large", "the image decompresses to too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError(400, "invalid_image", f"the {kind} file could not be decoded ({err})") from None
