"""Batched Grad-CAM++ on the last convolutional block, with label-free targets.

Same maths as `pytorch_grad_cam.GradCAMPlusPlus` (Chattopadhay et al. 2018, eq. 19), but the gradient is
taken only with respect to the trunk's output (`torch.autograd.grad`), for the whole batch at once, with no
parameter gradients and no numpy round trips. Because the target layer is the last conv block, the
backward pass only runs through the embedding head, so a heatmap costs little more than the forward pass
that also yields the embedding.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .models import ArcFace, FaceNet

# (embeddings (B, D), labels (B,) or None) -> one score per image (B,); only `true_class` reads labels.
Target = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

LABEL_FREE_TARGETS = ("embedding_norm", "predicted_class")


def make_target(name: str, head: ArcFace | None = None, allow_labels: bool = False) -> Target:
    """The score whose gradient Grad-CAM++ follows.

    - `embedding_norm`: L2 norm of the embedding (its gradient is that of the self-similarity e . e/|e|).
    - `predicted_class`: the largest ArcFace logit of a trained head (the model's own guess, no label).
    - `true_class`: the logit of the ground-truth identity. It leaks the label, so it exists only for
      training-time heatmaps and only when the caller says so (`allow_labels=True`).
    """
    if name == "embedding_norm":
        return lambda emb, labels: emb.norm(dim=1)
    if name == "predicted_class":
        if head is None:
            raise ValueError("predicted_class needs the model's ArcFace head")
        return lambda emb, labels: head(emb).max(dim=1).values
    if name == "true_class":
        if not allow_labels or head is None:
            raise ValueError("true_class uses the ground-truth label: training-time only, allow_labels=True")
        return lambda emb, labels: head(emb).gather(1, labels.view(-1, 1)).squeeze(1)
    raise ValueError(f"unknown Grad-CAM++ target {name!r}")


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1], with pytorch-grad-cam's epsilon so all-zero maps stay zero."""
    flat = x.flatten(1)
    flat = flat - flat.min(dim=1, keepdim=True).values
    flat = flat / (1e-7 + flat.max(dim=1, keepdim=True).values)
    return flat.view_as(x)


def gradcam_plusplus_map(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) activations and gradients -> (B, 1, h, w) non-negative class activation map."""
    grads2 = grads.pow(2)
    grads3 = grads2 * grads
    sum_activations = activations.sum(dim=(2, 3), keepdim=True)
    alpha = grads2 / (2 * grads2 + sum_activations * grads3 + 1e-6)  # eq. 19
    alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
    weights = (grads.clamp_min(0) * alpha).sum(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(dim=1, keepdim=True).clamp_min(0)


class GradCAMPlusPlus:
    """`cam(x)` -> (heatmaps (B, 1, H, W) in [0, 1] at the input size, embeddings (B, D)).

    The embedding comes from the same forward pass, so a caller that needs both pays once.
    """

    def __init__(self, model: FaceNet, target: Target):
        self.model = model.eval()
        self.target = target

    def __call__(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        coarse, embedding = self.coarse(x, labels)
        return upsample_map(coarse, x.shape[-2:]), embedding

    def coarse(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps at the target layer's resolution (B, 1, h, w), min-maxed, embeddings): what `upsample_map`
        turns into the full map, 16 numbers per image at 4x4 (a training cache stores these)."""
        with torch.no_grad():
            activations = self.model.trunk(x)
        activations.requires_grad_(True)
        with torch.enable_grad():
            embedding = self.model.head(activations)
            score = self.target(embedding, labels).sum()  # images are independent in eval mode
            (grads,) = torch.autograd.grad(score, activations)
        return _minmax(gradcam_plusplus_map(activations.detach(), grads)), embedding.detach()


def upsample_map(coarse: torch.Tensor, size) -> torch.Tensor:
    """A coarse map (B, 1, h, w) -> the heatmap at `size`, in [0, 1] (pytorch-grad-cam's resize step)."""
    cam = F.interpolate(coarse.float(), size=size, mode="bilinear", align_corners=False)
    return _minmax(cam.clamp_min(0))
