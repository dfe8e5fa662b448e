"""Images the service returns or stores: result-card thumbnails, heatmap overlays, and the PNG encoding of
every image it keeps losslessly (the overlays and the gallery's aligned crops).

Kept apart from the face pipeline because none of it affects a vector: changing a thumbnail's size or the
overlay's colour map happens here and nowhere else.
"""

import io
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # the detector's module loads onnxruntime; rendering needs only the box
    from .faces import Face

THUMBNAIL_SIZE = 160
OVERLAY_SIZE = 224
# OpenCV's jet colour map as an RGB lookup table, made once: cv2.applyColorMap builds its table on every
# call (6 ms for a 112x112 map here, most of an explained match's rendering), indexing it costs 0.05 ms.
JET_RGB = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, np.newaxis], cv2.COLORMAP_JET)[:, 0, ::-1]
# zlib level 1: a 224x224 overlay in 3 ms (58 KiB) instead of 13 ms (49 KiB) at Pillow's default 6, a 112x112
# face crop in 1.0 ms instead of 2.8 at the same size (photos hardly compress further); pixels are the same.
PNG_LEVEL = 1


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png(rgb: np.ndarray) -> bytes:
    """Lossless, at the fast zlib level (a request or an enrolment waits for it)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def thumbnail(rgb: np.ndarray, face: "Face", size: int = THUMBNAIL_SIZE) -> bytes:
    """A square JPEG around the face with some context, for result cards."""
    x, y, w, h = face.box
    side = 1.6 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    side = round(side)
    pad = max(0, -left, -top, left + side - rgb.shape[1], top + side - rgb.shape[0])
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) if pad else rgb
    crop = padded[top + pad : top + pad + side, left + pad : left + pad + side]
    resized = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
    return jpeg(resized)


def overlay_png(aligned: np.ndarray, heatmap: np.ndarray, size: int = OVERLAY_SIZE) -> bytes:
    """The aligned face with its heatmap in a jet colour map on top (0.45 opacity), as PNG."""
    colours = JET_RGB[np.uint8(255 * np.clip(heatmap, 0, 1))]
    blend = (0.55 * aligned + 0.45 * colours).astype(np.uint8)
    return png(np.asarray(Image.fromarray(blend).resize((size, size), Image.BILINEAR)))
