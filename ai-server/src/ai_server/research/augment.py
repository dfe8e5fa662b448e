"""Batched training augmentation that keeps the RGB image and its heatmap aligned.

All random parameters are drawn per image from one CPU `torch.Generator` (reproducible and resumable on
any device); the work itself is a handful of tensor ops on the whole batch, on the batch's device:
- geometry (RandomResizedCrop, horizontal flip, rotation) as one affine grid shared by RGB and heatmap;
- photometry (brightness, contrast, saturation, Gaussian blur) on RGB only;
- RandomErasing of the same rectangle in both (RGB to mid grey, heatmap to 0).
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.75, 1.0)  # crop area as a fraction of the aligned face
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotation: float = 10.0  # degrees, uniform in +-rotation
    flip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    blur: float = 0.2  # probability
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    erase: float = 0.25  # probability
    erase_scale: tuple[float, float] = (0.02, 0.2)
    erase_ratio: tuple[float, float] = (0.3, 3.3)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _log_uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return torch.exp(_uniform(n, math.log(low), math.log(high), g))


def geometry(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine maps from output to input coordinates (normalised, as `F.affine_grid` wants)."""
    area = _uniform(n, *cfg.scale, g)
    aspect = _log_uniform(n, *cfg.ratio, g)
    w = (area * aspect).sqrt().clamp(max=1.0)  # half-extents in [-1, 1] units
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = _uniform(n, -1.0, 1.0, g) * (1.0 - w)
    cy = _uniform(n, -1.0, 1.0, g) * (1.0 - h)
    angle = torch.deg2rad(_uniform(n, -cfg.rotation, cfg.rotation, g))
    flip = torch.where(torch.rand(n, generator=g) < cfg.flip, -1.0, 1.0)
    cos, sin = angle.cos(), angle.sin()
    return torch.stack(
        [
            torch.stack([cos * w * flip, -sin * h, cx], dim=1),
            torch.stack([sin * w * flip, cos * h, cy], dim=1),
        ],
        dim=1,
    )


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable blur with one sigma per image, as a grouped convolution over the batch."""
    b, c, hgt, wid = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(t[None] ** 2) / (2 * sigma[:, None].to(x) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (b*c, k)
    y = F.pad(x.reshape(1, b * c, hgt, wid), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel[:, None, None, :], groups=b * c)
    y = F.conv2d(y, kernel[:, None, :, None], groups=b * c)
    return y.reshape(b, c, hgt, wid)


@dataclass
class Draw:
    """Every random choice `augment` makes for a batch, so a view can be drawn once and re-applied."""

    theta: torch.Tensor  # (n, 2, 3) affine maps (see `geometry`)
    brightness: torch.Tensor  # (n,) factors
    contrast: torch.Tensor
    saturation: torch.Tensor
    blur: torch.Tensor  # (n,) bool
    sigma: torch.Tensor  # (n,)
    erase: torch.Tensor  # (n, 1, size, size) bool

    @classmethod
    def cat(cls, draws: list["Draw"]) -> "Draw":
        return cls(*(torch.cat([getattr(d, f.name) for d in draws]) for f in dataclasses.fields(cls)))


def draw(n: int, size: int, cfg: AugmentConfig, g: torch.Generator) -> Draw:
    """The random choices for n images, in the order `augment` has always drawn them."""
    theta = geometry(n, cfg, g)
    brightness = _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, g)
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, g)
    saturation = _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, g)
    blur = torch.rand(n, generator=g) < cfg.blur
    sigma = _uniform(n, *cfg.blur_sigma, g)
    return Draw(theta, brightness, contrast, saturation, blur, sigma, erase_mask(n, size, cfg, g))


def photometric(rgb: torch.Tensor, d: Draw) -> torch.Tensor:
    n, dev = len(rgb), rgb.device

    def factor(values: torch.Tensor) -> torch.Tensor:
        return values.to(dev).view(n, 1, 1, 1)

    gray_weights = torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)
    rgb = rgb * factor(d.brightness)
    mean = (rgb * gray_weights).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    rgb = (rgb - mean) * factor(d.contrast) + mean
    gray = (rgb * gray_weights).sum(1, keepdim=True)
    rgb = (rgb - gray) * factor(d.saturation) + gray
    blur = d.blur.to(dev)
    if blur.any():
        rgb = torch.where(blur.view(n, 1, 1, 1), _gaussian_blur(rgb, d.sigma), rgb)
    return rgb.clamp(0, 1)


def erase_mask(n: int, size: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size) bool, True inside each erased rectangle (none where the coin said no)."""
    area = _uniform(n, *cfg.erase_scale, g) * size * size
    aspect = _log_uniform(n, *cfg.erase_ratio, g)
    h = (area * aspect).sqrt().round().clamp(1, size)
    w = (area / aspect).sqrt().round().clamp(1, size)
    top = (torch.rand(n, generator=g) * (size - h + 1)).floor()
    left = (torch.rand(n, generator=g) * (size - w + 1)).floor()
    on = torch.rand(n, generator=g) < cfg.erase
    ys = torch.arange(size).view(1, size, 1)
    xs = torch.arange(size).view(1, 1, size)
    inside = (
        (ys >= top.view(n, 1, 1))
        & (ys < (top + h).view(n, 1, 1))
        & (xs >= left.view(n, 1, 1))
        & (xs < (left + w).view(n, 1, 1))
    )
    return (inside & on.view(n, 1, 1)).unsqueeze(1)


def augment(
    rgb: torch.Tensor,
    heatmap: torch.Tensor | None,
    size: int,
    cfg: AugmentConfig,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """RGB (B, 3, H, W) in [0, 1] and heatmap (B, 1, h, w) or None -> both at (size, size), aligned."""
    return apply(rgb, heatmap, size, draw(len(rgb), size, cfg, g))


def apply(
    rgb: torch.Tensor, heatmap: torch.Tensor | None, size: int, d: Draw
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`augment` with its random choices given."""
    n = len(rgb)
    grid = F.affine_grid(d.theta.to(rgb), [n, 1, size, size], align_corners=False)
    rgb = F.grid_sample(rgb, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if heatmap is not None:
        heatmap = F.grid_sample(
            heatmap.to(rgb.dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    rgb = photometric(rgb, d)
    erased = d.erase.to(rgb.device)
    rgb = rgb.masked_fill(erased, 0.5)
    if heatmap is not None:
        heatmap = heatmap.masked_fill(erased, 0.0)
    return rgb, heatmap
