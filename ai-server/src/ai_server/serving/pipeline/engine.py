"""The inference engine: photo -> face -> aligned crop -> vectors (+ explanation), with micro-batching.

One engine serves one model from the manifest, as ONNX Runtime graphs (`runtime`: no torch). A Heatmap
model's pass also yields its Base source's embedding, so the gallery keeps both vector spaces at no extra
cost and either can be queried. Flip test-time augmentation (the image and its mirror in the same batch)
matches how the calibration and the no-match threshold were measured. The model's own Grad-CAM++ map is
part of every pass (closed form, no backward), so `explain` costs nothing but its rendering.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.confidence import candidate_features, candidate_probability
from ...core.formats import HEATMAP_VECTOR_SIZE
from ...core.weights import load_manifest
from ..errors import Code, ServiceError
from .batcher import Batcher, Ticket
from .faces import ALIGNED_SIZE, Face, FaceDetector, align
from .images import decode_image
from .render import jpeg, thumbnail
from .runtime import ServedModel, face_vectors

VECTOR_KINDS = ("embedding", "heatmap_vector")


@dataclass
class Space:
    """A vector space of the gallery: which model made the vectors and what kind they are."""

    key: str  # e.g. shufflenet-heatmap@1a2b3c4d5e6f/embedding
    model: str
    version: str  # the first 12 hex digits of the model file's sha256
    vector: str  # embedding or heatmap_vector
    dim: int
    calibration: dict | None  # the manifest's calibration of this vector kind
    threshold: float | None  # the pair calibration's no-match similarity (FAR 1e-3 on validation pairs)

    @property
    def search_calibration(self) -> dict | None:
        """The fitted search probability (`core.confidence`), if the model's evaluation measured one."""
        return (self.calibration or {}).get("identification")

    def confidences(
        self, similarities: list[float], gallery_size: int, k: int, prior: float | None
    ) -> list | None:
        """P(candidate r is the person in the photo) for the first k of a search's per-person similarities
        (best first, one more when the gallery has it); None without a search calibration."""
        model = self.search_calibration
        if model is None or not similarities:
            return None
        features = candidate_features(similarities, gallery_size, k)
        return candidate_probability(features, np.arange(1, len(features) + 1), model, prior).tolist()


@dataclass
class Photo:
    """An upload after decoding, face detection and alignment."""

    rgb: np.ndarray  # the decoded upload
    aligned: np.ndarray  # the 112x112 aligned face
    face: Face | None  # None when the upload was already aligned
    faces_found: int

    def describe(self) -> dict:
        if self.face is None:
            box = [0, 0, ALIGNED_SIZE, ALIGNED_SIZE]
            return {"box": box, "score": None, "landmarks": None, "faces_found": 1}
        return {
            "box": [round(float(v), 1) for v in self.face.box],
            "score": round(self.face.score, 4),
            "landmarks": np.round(self.face.landmarks, 1).tolist(),
            "faces_found": self.faces_found,
        }

    def thumbnail(self) -> bytes:
        return jpeg(self.aligned) if self.face is None else thumbnail(self.rgb, self.face)


@dataclass
class Vectors:
    by_space: dict[str, np.ndarray]  # space key -> (D,) L2-normalised
    explanation: np.ndarray | None  # (112, 112) float32 in [0, 1]: what drove the embedding
    seconds: dict[str, float]


class Engine:
    def __init__(
        self,
        weights_dir: str | Path | None = None,
        model: str | None = None,
        vector: str = "embedding",
        threads: int = 1,
        flip: bool = True,
        max_batch: int = 8,
        batch_wait_ms: float = 2.0,
    ):
        if vector not in VECTOR_KINDS:
            raise ValueError(f"vector must be embedding or heatmap_vector, not {vector!r}")
        self.manifest = load_manifest(weights_dir)
        self.model_name = model or self.manifest["default"]
        if self.model_name not in self.manifest["models"]:
            known = sorted(self.manifest["models"])
            raise ValueError(f"model {self.model_name!r} is not in the manifest: {known}")
        self.entry = self.manifest["models"][self.model_name]
        self.model = ServedModel(weights_dir, self.manifest, self.model_name, threads)
        self.detector = FaceDetector(threads)
        self.flip, self.vector = flip, vector
        self.spaces: dict[str, Space] = {}
        self.default_space = self._add_space(self.model_name, vector)
        self.source_space = None
        if self.entry.get("heatmap_source") and vector == "embedding":
            self.source_space = self._add_space(self.entry["heatmap_source"], "embedding")
        self._batcher = Batcher(self._compute, max_batch, batch_wait_ms / 1000.0)

    @classmethod
    def from_settings(cls, settings) -> "Engine":
        """The engine `settings` (a `serving.settings.Settings`) describe, as the server runs it."""
        s = settings
        return cls(s.weights_dir, s.model, s.vector, s.onnx_threads, s.flip_tta, s.max_batch, s.batch_wait_ms)

    def _add_space(self, name: str, vector: str) -> Space:
        entry = self.manifest["models"][name]
        calibration = (entry.get("calibration") or {}).get(vector)
        dim = entry["embedding_dim"] if vector == "embedding" else HEATMAP_VECTOR_SIZE**2
        version = entry["sha256"][:12]
        threshold = calibration.get("no_match_threshold") if calibration else None
        space = Space(f"{name}@{version}/{vector}", name, version, vector, dim, calibration, threshold)
        self.spaces[space.key] = space
        return space

    @property
    def models(self) -> list[str]:
        """The model names a request may ask for (the served model and, for a Heatmap model, its source)."""
        return sorted({s.model for s in self.spaces.values()})

    @property
    def dims(self) -> dict[str, int]:
        """{space key: dimension}: what the gallery needs to hold this engine's vectors."""
        return {key: space.dim for key, space in self.spaces.items()}

    def space_for(self, model: str | None) -> Space:
        """The vector space to search for a requested model name (None: the served model)."""
        if model is None:
            return self.default_space
        for space in self.spaces.values():
            if space.model == model:
                return space
        raise ServiceError(Code.UNKNOWN_MODEL, f"model must be one of {self.models}")

    # -- faces ----------------------------------------------------------------------------------------
    def photo(
        self, data: bytes, max_bytes: int, max_pixels: int, aligned: bool = False, seconds: dict | None = None
    ) -> Photo:
        """Decode an upload, find its largest face and align it (or take it as an aligned crop)."""
        seconds = {} if seconds is None else seconds
        t = time.perf_counter()
        rgb = decode_image(data, max_bytes, max_pixels)
        seconds["decode"] = time.perf_counter() - t
        if aligned:
            if rgb.shape[:2] != (ALIGNED_SIZE, ALIGNED_SIZE):
                raise ServiceError(Code.INVALID_IMAGE, "align=false needs an aligned 112x112 face crop")
            return Photo(rgb, rgb, None, 1)
        t = time.perf_counter()
        faces = self.detector.detect(rgb)
        seconds["detect"] = time.perf_counter() - t
        if not faces:
            raise ServiceError(Code.NO_FACE_FOUND, "no face was found in the image")
        t = time.perf_counter()
        crop = align(rgb, faces[0].landmarks)  # the largest face
        seconds["align"] = time.perf_counter() - t
        return Photo(rgb, crop, faces[0], len(faces))

    # -- vectors --------------------------------------------------------------------------------------
    def expect(self):
        """`with engine.expect() as ticket:` around a request's photo() and vectors(..., ticket): concurrent
        requests wait for it to batch with, a lone one waits for no one (see `Batcher`)."""
        return self._batcher.expect()

    def vectors(self, aligned: np.ndarray, explain: bool = False, ticket: Ticket | None = None) -> Vectors:
        """One aligned 112x112 RGB face -> its vectors in every space (+ explanation); batched with
        concurrent callers."""
        return self._batcher.submit((aligned, explain), ticket).result()

    def vectors_many(self, aligned: list[np.ndarray], explain: bool = False) -> list[Vectors]:
        """Several faces in one pass (enrolment, re-embedding): no waiting for other callers."""
        return self._compute([(a, explain) for a in aligned])

    def _compute(self, items: list[tuple[np.ndarray, bool]]) -> list[Vectors]:
        faces = np.stack([a for a, _ in items])
        out = face_vectors(self.model, faces, flip=self.flip)
        vectors: dict[str, np.ndarray] = {}
        if self.vector == "embedding":
            vectors[self.default_space.key] = out.embedding
            if self.source_space is not None:
                vectors[self.source_space.key] = out.source_embedding
        else:
            vectors[self.default_space.key] = out.heatmap_vector()
        return [
            Vectors(
                {k: v[i] for k, v in vectors.items()},
                out.explanation[i] if explain else None,
                {**out.seconds, "batch": len(items)},
            )
            for i, (_, explain) in enumerate(items)
        ]
