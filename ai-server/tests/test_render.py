"""The explain overlay (the aligned face under its heatmap in OpenCV's jet colour map, a 224x224 PNG) and the
PNG encoding every losslessly kept image goes through."""

import io

import cv2
import numpy as np
from PIL import Image

from ai_server.serving.pipeline.render import OVERLAY_SIZE, overlay_png, png


def reference_overlay(aligned: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The overlay computed the plain way: cv2.applyColorMap on the map itself (BGR -> RGB), 0.45 opacity,
    then the bilinear upscale."""
    colours = cv2.applyColorMap(np.uint8(255 * np.clip(heatmap, 0, 1)), cv2.COLORMAP_JET)[:, :, ::-1]
    blend = (0.55 * aligned + 0.45 * colours).astype(np.uint8)
    return np.asarray(Image.fromarray(blend).resize((OVERLAY_SIZE, OVERLAY_SIZE), Image.BILINEAR))


def test_the_overlay_is_the_face_under_the_jet_coloured_map_pixel_for_pixel():
    rng = np.random.default_rng(0)
    aligned = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    for heatmap in (
        rng.random((112, 112), dtype=np.float32),
        rng.normal(0.5, 0.6, (112, 112)).astype(np.float32),  # outside [0, 1]: clipped
        np.linspace(0, 1, 112 * 112, dtype=np.float32).reshape(112, 112),  # every colour of the map
    ):
        decoded = Image.open(io.BytesIO(overlay_png(aligned, heatmap)))
        assert decoded.format == "PNG" and decoded.mode == "RGB"
        assert np.array_equal(np.asarray(decoded), reference_overlay(aligned, heatmap))


def test_cold_regions_are_blue_and_hot_ones_red():
    face = np.full((112, 112, 3), 128, dtype=np.uint8)
    heatmap = np.zeros((112, 112), dtype=np.float32)
    heatmap[:, 56:] = 1.0
    overlay = np.asarray(Image.open(io.BytesIO(overlay_png(face, heatmap))))
    cold, hot = overlay[112, 10].astype(int), overlay[112, 210].astype(int)
    assert cold[2] > cold[0] + 40 and hot[0] > hot[2] + 40


def test_a_kept_crop_decodes_to_exactly_its_pixels():
    """Re-embedding reads the gallery's crops back: they must be the very pixels that were enrolled."""
    crop = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(png(crop)))
    assert decoded.format == "PNG" and np.array_equal(np.asarray(decoded), crop)
