"""Face-embedding networks: torchvision backbones, an embedding head, a 4-channel stem, an ArcFace head.

A network is a `trunk` (the backbone up to and including its last convolutional block, the layer Grad-CAM++
looks at) followed by an `EmbeddingHead`. The ArcFace head is separate because only training and the
closed-set evaluation need it; an embedding is all the gallery stores.
"""

import math
import os
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .weights import sha256_file

ARCHS = ("mobilenet_v3_large", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "efficientnet_b0")


def _trunk(arch: str) -> tuple[nn.Sequential, int]:
    """The backbone without its classifier, and the channel count of its last conv block."""
    if arch == "mobilenet_v3_large":
        net = torchvision.models.mobilenet_v3_large(weights=None)
        return net.features, net.features[-1].out_channels
    if arch == "efficientnet_b0":
        net = torchvision.models.efficientnet_b0(weights=None)
        return net.features, net.features[-1].out_channels
    if arch in ("shufflenet_v2_x1_0", "shufflenet_v2_x1_5"):  # x1.5: 2.2x the width-1.0 compute
        net = getattr(torchvision.models, arch)(weights=None)
        names = ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5")
        return nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names)), net.conv5[0].out_channels
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")


class EmbeddingHead(nn.Module):
    """Pooling -> dropout -> linear -> BatchNorm1d: the usual face-embedding neck (ArcFace, insightface)."""

    def __init__(self, in_features: int, embedding_dim: int, dropout: float):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(self.dropout(self.pool(features).flatten(1))))


class FaceNet(nn.Module):
    """Image batch (B, C, H, W) -> embedding (B, D), not normalised (its norm is a Grad-CAM++ target)."""

    def __init__(self, arch: str, embedding_dim: int = 512, dropout: float = 0.2):
        super().__init__()
        self.arch = arch
        self.trunk, channels = _trunk(arch)
        self.head = EmbeddingHead(channels, embedding_dim, dropout)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                # torchvision's MobileNetV3 uses 0.01 (tuned for ImageNet's long epochs); with ~70 steps an
                # epoch here, its running statistics lag so far that eval-mode outputs are noise
                m.momentum = 0.1

    @property
    def in_channels(self) -> int:
        return _first_conv(self.trunk)[2].in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def _first_conv(module: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                return parent, name, child
    raise ValueError("no Conv2d in module")


def widen_stem(model: FaceNet) -> FaceNet:
    """Give the first conv a 4th input channel (the heatmap), in place.

    The RGB filters are kept and the 4th filter is their mean, as in the paper, so a trained Base model
    seeds a Heatmap model: with a zero 4th channel the widened model computes exactly what it did before.
    """
    parent, name, conv = _first_conv(model.trunk)
    if conv.in_channels != 3:
        raise ValueError(f"stem already has {conv.in_channels} input channels")
    wide = nn.Conv2d(
        4,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        wide.weight[:, :3] = conv.weight
        wide.weight[:, 3:] = conv.weight.mean(dim=1, keepdim=True)
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    setattr(parent, name, wide.to(conv.weight.device, conv.weight.dtype))
    return model


def build_model(arch: str, in_channels: int = 3, embedding_dim: int = 512, dropout: float = 0.2) -> FaceNet:
    """A randomly initialised FaceNet taking RGB (3) or RGB + heatmap (4) input."""
    if in_channels not in (3, 4):
        raise ValueError(f"in_channels must be 3 (RGB) or 4 (RGB + heatmap), not {in_channels}")
    model = FaceNet(arch, embedding_dim, dropout)
    return widen_stem(model) if in_channels == 4 else model


class ArcFace(nn.Module):
    """Additive angular margin head (Deng et al. 2019, eq. 3): s * cos(theta + m) on the true class.

    Without labels it returns the plain scaled cosines: the closed-set logits and the predicted-class
    Grad-CAM++ target. `easy_margin` applies the margin only where cos > 0, which helps small models
    trained from scratch; the training loop can also pass a smaller `margin` during warm-up.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.5,
        easy_margin: bool = False,
    ):
        super().__init__()
        self.scale, self.margin, self.easy_margin = scale, margin, easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)

    def forward(
        self, embedding: torch.Tensor, labels: torch.Tensor | None = None, margin: float | None = None
    ) -> torch.Tensor:
        cos = F.linear(F.normalize(embedding), F.normalize(self.weight)).clamp(-1.0, 1.0)
        if labels is None:
            return self.scale * cos
        m = self.margin if margin is None else margin
        sin = (1.0 - cos**2).clamp_min(1e-7).sqrt()
        phi = cos * math.cos(m) - sin * math.sin(m)
        if self.easy_margin:
            phi = torch.where(cos > 0, phi, cos)
        else:  # keep the logit monotonic in theta beyond pi - m (insightface's "th"/"mm" trick)
            phi = torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
        true = F.one_hot(labels, cos.shape[1]).bool()
        return self.scale * torch.where(true, phi, cos)


def model_input(rgb: torch.Tensor, heatmap: torch.Tensor | None = None, size: int = 112) -> torch.Tensor:
    """RGB in [0, 1] (B, 3, H, W) [+ heatmap (B, 1, h, w) in [0, 1]] -> the network's input at `size`.

    RGB is normalised to [-1, 1]; the heatmap channel is appended as it is (0..1), as in the paper.
    """
    x = _resize(rgb, size) * 2.0 - 1.0
    if heatmap is not None:
        x = torch.cat([x, _resize(heatmap.to(x.dtype), size)], dim=1)
    return x.contiguous(memory_format=torch.channels_last)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def save_model(path: str | os.PathLike, model: FaceNet, head: ArcFace, config: dict) -> str:
    """Write a model file atomically (a half-written file never has the final name); return its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": config, "model": model.state_dict(), "head": head.state_dict()}, tmp)
    os.replace(tmp, path)
    return sha256_file(path)


def load_model(
    path: str | os.PathLike, expect_sha256: str | None = None, device: str = "cpu"
) -> tuple[FaceNet, ArcFace, dict]:
    """Load a model file in eval mode: a run's `save_model` file (float32 or float16 weights) or a shipped
    ONNX graph (`core.onnx_graph`: the same weights, read from its initializers)."""
    if expect_sha256 is not None and sha256_file(path) != expect_sha256:
        raise ValueError(f"{path}: sha256 differs from the expected {expect_sha256}")
    if str(path).endswith(".onnx"):
        from .onnx_graph import read_onnx

        blob = read_onnx(path)
    else:
        blob = torch.load(path, map_location=device, weights_only=True)
    config = blob["config"]
    model = build_model(config["arch"], config["in_channels"], config["embedding_dim"], config["dropout"])
    model.load_state_dict(blob["model"])
    head = ArcFace(
        config["embedding_dim"],
        config["num_classes"],
        config["scale"],
        config["margin"],
        config["easy_margin"],
    )
    head.load_state_dict(blob["head"])
    model.to(device, memory_format=torch.channels_last).eval()
    return model, head.to(device).eval(), config
