"""A trained model ready to use: aligned RGB faces -> (heatmap) -> embedding, for evaluation and serving.

A Heatmap model reads a 4th channel made by Grad-CAM++ on its heatmap source (a trained Base model), with a
label-free target, from the very image it is given. A Base model needs no source.
"""

import os
from pathlib import Path

import torch

from .cam import LABEL_FREE_TARGETS, GradCAMPlusPlus, make_target
from .models import ArcFace, FaceNet, load_model, model_input


class Recognizer:
    def __init__(
        self,
        model: FaceNet,
        head: ArcFace,
        input_size: int,
        source: FaceNet | None = None,
        source_head: ArcFace | None = None,
        cam_target: str = "embedding_norm",
        config: dict | None = None,
    ):
        if model.in_channels == 4 and source is None:
            raise ValueError("a Heatmap model needs its heatmap source model")
        if cam_target not in LABEL_FREE_TARGETS:
            raise ValueError(f"evaluation and serving use label-free targets only, not {cam_target!r}")
        self.model, self.head, self.input_size = model.eval(), head.eval(), input_size
        self.cam_target, self.config = cam_target, config or {}
        self.cam = None if source is None else GradCAMPlusPlus(source, make_target(cam_target, source_head))
        self.own_cam = GradCAMPlusPlus(model, make_target("embedding_norm"))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "Recognizer":
        """Load a model file; a Heatmap model's source is found beside it and checked by sha256."""
        model, head, config = load_model(path, device=device)
        source = source_head = None
        heat = config.get("heatmap")
        if heat:
            source_path = Path(path).parent / heat["source"]
            source, source_head, _ = load_model(source_path, heat["sha256"], device=device)
        return cls(model, head, config["input_size"], source, source_head, eval_target(config), config)

    @property
    def uses_heatmap(self) -> bool:
        return self.model.in_channels == 4

    def heatmaps(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3, H, W) in [0, 1] -> Grad-CAM++ maps (B, 1, S, S) of the heatmap source at input size."""
        return self.cam(model_input(rgb, size=self.input_size))[0]

    def embed(self, rgb: torch.Tensor, heatmaps: torch.Tensor | None = None) -> torch.Tensor:
        """RGB in [0, 1] (+ the heatmaps to use as the 4th channel, computed here if not given)."""
        if self.uses_heatmap and heatmaps is None:
            heatmaps = self.heatmaps(rgb)
        with torch.no_grad():
            return self.model(model_input(rgb, heatmaps if self.uses_heatmap else None, self.input_size))

    def explain(
        self, rgb: torch.Tensor, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, this model's own Grad-CAM++ map): what drove the embedding, from the same pass.

        For a Heatmap model the input's 4th channel is the source's map; the explanation is the map of
        the model that made the embedding (the paper's served "heatmap vector" is this map, flattened).
        """
        if self.uses_heatmap and heatmaps is None:
            heatmaps = self.heatmaps(rgb)
        x = model_input(rgb, heatmaps if self.uses_heatmap else None, self.input_size)
        explanation, embedding = self.own_cam(x)
        return embedding, explanation

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Closed-set prediction over the training identities (the ArcFace head's largest cosine)."""
        with torch.no_grad():
            return self.head(embeddings).argmax(dim=1)


def eval_target(config: dict) -> str:
    """The heatmap target at evaluation and serving: the training target if it is label-free, else
    predicted_class (a model trained on label heatmaps is then evaluated without them, and says so)."""
    heat = config.get("heatmap") or {}
    target = heat.get("target", "embedding_norm")
    return target if target in LABEL_FREE_TARGETS else "predicted_class"


def in_batches(fn, *tensors: torch.Tensor | None, batch_size: int = 128) -> torch.Tensor:
    """Apply `fn` to aligned slices of the tensors (None passes through) and concatenate the results."""
    n = len(tensors[0])
    out = [
        fn(*(None if t is None else t[i : i + batch_size] for t in tensors)) for i in range(0, n, batch_size)
    ]
    return torch.cat(out)
