"""What goes into the gallery and what comes out of a search."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class NewFace:
    """A face ready to store: its aligned crop, a thumbnail and one vector per vector space."""

    crop: np.ndarray  # (112, 112, 3) uint8
    thumbnail: bytes  # JPEG
    vectors: dict[str, np.ndarray]
    box: list[float] = field(default_factory=list)
    detection_score: float | None = None


@dataclass
class Match:
    person_id: str
    name: str
    metadata: dict
    similarity: float
    face_id: int


def normalised(vector: np.ndarray) -> np.ndarray:
    """float32, flat, unit length: inner products of stored and query vectors are cosines."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
