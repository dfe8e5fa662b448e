"""Evaluation conditions (the paper's noise, occlusion and brightness sweeps) and 4th-channel ablations.

Conditions act on RGB in [0, 1] at the aligned 112x112 resolution, before resizing to the model's input.
For Heatmap models the heatmap is then computed from the perturbed image, as it would be for a real
degraded photo; a heatmap from the clean image would hand the model information the condition removed.
Random conditions draw from a generator seeded by (seed, repeat), so every model sees the same damage.
"""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Condition:
    kind: str  # original | noise | occlusion | brightness
    level: float = 0.0

    @property
    def name(self) -> str:
        return "original" if self.kind == "original" else f"{self.kind}_{self.level:g}"

    @property
    def random(self) -> bool:
        return self.kind in ("noise", "occlusion")

    @staticmethod
    def parse(name: str) -> "Condition":
        if name == "original":
            return ORIGINAL
        kind, _, level = name.rpartition("_")
        if kind not in SWEEPS:
            raise ValueError(f"unknown condition {name!r}")
        return Condition(kind, float(level))


ORIGINAL = Condition("original")
SWEEPS = {
    "noise": (0.05, 0.1, 0.15, 0.2),  # Gaussian sigma on the 0..1 scale
    "occlusion": (0.1, 0.2, 0.3, 0.4),  # area ratio of a square at a random position
    "brightness": (0.7, 0.85, 1.15, 1.3),  # multiplicative factor
}
ALL_CONDITIONS = [ORIGINAL] + [Condition(k, v) for k, levels in SWEEPS.items() for v in levels]
ABLATION_CONDITIONS = [Condition("occlusion", 0.3), Condition("brightness", 1.15), Condition("noise", 0.1)]
FOURTH_CHANNEL_MODES = ("normal", "zero", "random", "shuffle")


def perturb(rgb: torch.Tensor, condition: Condition, generator: torch.Generator) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> the same images under `condition`, still in [0, 1]."""
    if condition.kind == "original":
        return rgb
    if condition.kind == "brightness":
        return (rgb * condition.level).clamp(0, 1)
    if condition.kind == "noise":
        noise = torch.randn(rgb.shape, generator=generator).to(rgb)
        return (rgb + condition.level * noise).clamp(0, 1)
    if condition.kind == "occlusion":
        return rgb.masked_fill(occlusion_mask(rgb, condition.level, generator), 0.0)
    raise ValueError(f"unknown condition {condition.kind!r}")


def occlusion_mask(rgb: torch.Tensor, area: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) bool: a black square covering `area` of the image, wholly inside it, anywhere."""
    b, _, h, w = rgb.shape
    side = max(1, round((area * h * w) ** 0.5))
    top = torch.randint(0, h - side + 1, (b,), generator=generator).view(b, 1, 1)
    left = torch.randint(0, w - side + 1, (b,), generator=generator).view(b, 1, 1)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    inside = (ys >= top) & (ys < top + side) & (xs >= left) & (xs < left + side)
    return inside.unsqueeze(1).to(rgb.device)


def condition_generator(seed: int, repeat: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + repeat)


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation with no fixed point (Sattolo's algorithm): every image gets another's map."""
    rng = np.random.default_rng(seed)
    perm = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def ablate_heatmaps(heatmaps: torch.Tensor, mode: str, seed: int) -> torch.Tensor:
    """Replace the 4th channel for the causal test: normal (as is), zero, random (uniform) or shuffle."""
    if mode == "normal":
        return heatmaps
    if mode == "zero":
        return torch.zeros_like(heatmaps)
    if mode == "random":
        g = torch.Generator().manual_seed(seed)
        return torch.rand(heatmaps.shape, generator=g).to(heatmaps)
    if mode == "shuffle":
        if len(heatmaps) < 2:
            raise ValueError("shuffle needs at least two images")
        return heatmaps[torch.from_numpy(derangement(len(heatmaps), seed)).to(heatmaps.device)]
    raise ValueError(f"unknown 4th-channel mode {mode!r}; expected one of {FOURTH_CHANNEL_MODES}")
