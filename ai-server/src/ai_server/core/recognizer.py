"""A trained model ready to use: aligned RGB faces -> (heatmap) -> embedding, for evaluation and serving.

A Heatmap model reads a 4th channel made by Grad-CAM++ on its heatmap source (a trained Base model), with a
label-free target, from the very image it is given. A Base model needs no source.
"""

import os
import time
from pathlib import Path
from typing import NamedTuple

import torch

from .cam import LABEL_FREE_TARGETS, GradCAMPlusPlus, make_target
from .models import ArcFace, FaceNet, load_model, model_input
from .weights import default_weights_dir


class Output(NamedTuple):
    embedding: torch.Tensor  # (B, D), not normalised
    source_embedding: torch.Tensor | None  # the heatmap source's (Base model's) embedding, free
    heatmap: torch.Tensor | None  # the 4th channel the model read (B, 1, S, S)
    explanation: torch.Tensor | None  # the model's own Grad-CAM++ map (B, 1, S, S)


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

    def run(
        self,
        rgb: torch.Tensor,
        explain: bool = False,
        heatmaps: torch.Tensor | None = None,
        seconds: dict | None = None,
    ) -> Output:
        """Everything one pass gives: embedding, the source's embedding and map (Heatmap models), and with
        `explain` this model's own Grad-CAM++ map. `heatmaps` replaces the 4th channel (ablations);
        `seconds` receives the time of the heatmap and of the embedding stage."""
        started = time.perf_counter()
        source_embedding = None
        if self.uses_heatmap and heatmaps is None:
            heatmaps, source_embedding = self.cam(model_input(rgb, size=self.input_size))
        middle = time.perf_counter()
        x = model_input(rgb, heatmaps if self.uses_heatmap else None, self.input_size)
        explanation = None
        if explain:
            explanation, embedding = self.own_cam(x)
        else:
            with torch.no_grad():
                embedding = self.model(x)
        if seconds is not None:
            seconds["heatmap"] = middle - started
            seconds["embed"] = time.perf_counter() - middle
        return Output(embedding, source_embedding, heatmaps if self.uses_heatmap else None, explanation)

    def embed(self, rgb: torch.Tensor, heatmaps: torch.Tensor | None = None) -> torch.Tensor:
        """RGB in [0, 1] (+ the heatmaps to use as the 4th channel, computed here if not given)."""
        return self.run(rgb, heatmaps=heatmaps).embedding

    def explain(
        self, rgb: torch.Tensor, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, this model's own Grad-CAM++ map): what drove the embedding, from the same pass.

        For a Heatmap model the input's 4th channel is the source's map; the explanation is the map of
        the model that made the embedding (the paper's served "heatmap vector" is this map, flattened).
        """
        out = self.run(rgb, explain=True, heatmaps=heatmaps)
        return out.embedding, out.explanation

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


def load_recognizer(
    weights_dir: str | os.PathLike | None, name: str, manifest: dict, device: str = "cpu"
) -> Recognizer:
    """The named model of a verified manifest (`weights.load_manifest`), in torch, ready to embed faces.
    `Recognizer.load` is the one loader: a shipped Heatmap model's file names its shipped source and that
    file's sha256 (`shipping.export_model`)."""
    weights_dir = Path(weights_dir or default_weights_dir())
    return Recognizer.load(weights_dir / manifest["models"][name]["file"], device=device)


def in_batches(fn, *tensors: torch.Tensor | None, batch_size: int = 128) -> torch.Tensor:
    """Apply `fn` to aligned slices of the tensors (None passes through) and concatenate the results."""
    n = len(tensors[0])
    out = [
        fn(*(None if t is None else t[i : i + batch_size] for t in tensors)) for i in range(0, n, batch_size)
    ]
    return torch.cat(out)
