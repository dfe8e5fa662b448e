"""Heatmaps of a training set from a heatmap source model, computed once and kept on disk."""

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..core.cam import GradCAMPlusPlus, Target, make_target
from ..core.models import FaceNet, load_model, model_input, sha256_file


def heatmaps_for(
    images: torch.Tensor,
    source: FaceNet,
    target: Target,
    size: int,
    labels: torch.Tensor | None = None,
    batch_size: int = 128,
) -> torch.Tensor:
    """uint8 RGB images (N, 3, H, W) -> float16 heatmaps (N, 1, size, size) from the heatmap source model."""
    cam = GradCAMPlusPlus(source, target)
    device = next(source.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        rgb = images[start : start + batch_size].to(device).float() / 255.0
        batch_labels = None if labels is None else labels[start : start + batch_size].to(device)
        heat, _ = cam(model_input(rgb, size=size), batch_labels)
        out.append(heat.half().cpu())
    return torch.cat(out) if out else torch.empty(0, 1, size, size, dtype=torch.float16)


def cached_heatmaps(
    images: torch.Tensor,
    source_path: str | os.PathLike,
    target_name: str,
    size: int,
    cache_dir: str | os.PathLike,
    labels: torch.Tensor | None = None,
    allow_labels: bool = False,
) -> torch.Tensor:
    """Heatmaps of `images` from the model file at `source_path`, computed once and kept as float16 .npy.

    The key is the model file's sha256, the target, the size and a hash of the image pixels (and labels
    for the label target), so a retrained source model or another image set never reuses stale maps.
    """
    source_sha = sha256_file(source_path)
    digest = hashlib.sha256(images.numpy().tobytes())
    if target_name == "true_class":
        digest.update(labels.numpy().tobytes())
    path = Path(cache_dir) / f"{source_sha[:16]}-{target_name}-{size}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return torch.from_numpy(np.load(path))
    model, head, _ = load_model(source_path)
    target = make_target(target_name, head, allow_labels)
    heat = heatmaps_for(images, model, target, size, labels if target_name == "true_class" else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, heat.numpy())
    os.replace(tmp, path)
    return heat
