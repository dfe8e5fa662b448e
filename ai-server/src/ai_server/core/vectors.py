"""The vectors of a face, computed one way for serving and for evaluation.

Calibration and the no-match threshold are fitted on evaluation's vectors and applied to the server's, so
both call `face_vectors`: flip test-time augmentation (the face and its mirror in one batch, each with its
own heatmap, embeddings summed), and the paper's heatmap vector (the model's own Grad-CAM++ map at
128x128, flattened).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .formats import HEATMAP_VECTOR_SIZE
from .recognizer import Recognizer


@dataclass
class FaceVectors:
    embedding: torch.Tensor  # (n, D) L2-normalised; with flip, of the face + its mirror
    embedding_noflip: torch.Tensor  # (n, D) L2-normalised, the face alone
    source_embedding: torch.Tensor | None  # the heatmap source's, pooled the same way (Heatmap models)
    explanation: torch.Tensor | None  # (n, 1, S, S) the model's own map of the face (explain=True)
    seconds: dict = field(default_factory=dict)  # heatmap and embed stage times

    def heatmap_vector(self) -> torch.Tensor:
        """(n, 128*128) L2-normalised: the paper's served vector."""
        small = F.interpolate(
            self.explanation, size=HEATMAP_VECTOR_SIZE, mode="bilinear", align_corners=False
        )
        return F.normalize(small.flatten(1), dim=1)


def face_vectors(
    recognizer: Recognizer, rgb: torch.Tensor, flip: bool = True, explain: bool = False
) -> FaceVectors:
    """Aligned faces, RGB in [0, 1] (n, 3, H, W) -> their vectors (one batched pass)."""
    n = len(rgb)
    batch = torch.cat([rgb, rgb.flip(-1)]) if flip else rgb
    seconds: dict[str, float] = {}
    out = recognizer.run(batch, explain=explain, seconds=seconds)

    def pooled(emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(emb[:n] + emb[n:] if flip else emb, dim=1)

    return FaceVectors(
        embedding=pooled(out.embedding),
        embedding_noflip=F.normalize(out.embedding[:n], dim=1),
        source_embedding=pooled(out.source_embedding) if out.source_embedding is not None else None,
        explanation=out.explanation[:n] if out.explanation is not None else None,
        seconds=seconds,
    )
