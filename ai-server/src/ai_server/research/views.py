"""Deterministic training views, so that a student trains on exactly the images its teacher embedded.

View 0 of an image is the aligned crop itself, view 1 its mirror, and view v >= 2 an augmented copy
(`augment.draw` with a generator seeded from the image's path and v). Any view of any image can be rebuilt
at any time from those two numbers, so a teacher-target cache stores only the 128-d targets, never pixels.
Views are quantised to uint8, as the teacher (which reads uint8) saw them.
"""

import hashlib
import json

import torch

from .augment import AugmentConfig, Draw, apply, draw

VIEW_SEED = 20261201


def view_seed(path: str, view: int, seed: int = VIEW_SEED) -> int:
    digest = hashlib.sha256(f"{seed}:{view}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch seeds are signed 64-bit


def views_id(cfg: AugmentConfig, seed: int = VIEW_SEED) -> str:
    """A short hash of what defines the views: a cache built for other views is never reused."""
    text = json.dumps({"seed": seed, "augment": cfg.__dict__}, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render(
    images: torch.Tensor,
    paths: list[str],
    views: torch.Tensor,
    cfg: AugmentConfig,
    seed: int = VIEW_SEED,
) -> torch.Tensor:
    """uint8 (B, 3, H, W) crops, their data paths and one view number each (B,) -> uint8 views."""
    views = torch.as_tensor(views).view(-1)
    out = images.clone()
    mirrored = views == 1
    out[mirrored] = images[mirrored].flip(-1)
    augmented = torch.nonzero(views >= 2).flatten().tolist()
    if augmented:
        size = images.shape[-1]
        d = Draw.cat(
            [
                draw(1, size, cfg, torch.Generator().manual_seed(view_seed(paths[i], int(views[i]), seed)))
                for i in augmented
            ]
        )
        rgb, _ = apply(images[augmented].float() / 255.0, None, size, d)
        out[augmented] = (rgb * 255.0).round().clamp(0, 255).to(torch.uint8)
    return out
