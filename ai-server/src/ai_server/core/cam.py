"""Batched Grad-CAM++ on the last convolutional block, with label-free targets.

Same maths as `pytorch_grad_cam.GradCAMPlusPlus` (Chattopadhay et al. 2018, eq. 19), but the gradient is
taken only with respect to the trunk's output (`torch.autograd.grad`), for the whole batch at once, with no
parameter gradients and no numpy round trips. Because the target layer is the last conv block, the
backward pass only runs through the embedding head, so a heatmap costs little more than the forward pass
that also yields the embedding.

Closed form (`ClosedFormGradCAMPlusPlus`, what the shipped ONNX graphs compute). The head is global average
pooling -> linear W (D, C) -> BatchNorm1d (eval: e = gamma * (W p - mu) / sigma + beta), so with the target
S(e) and g = dS/de (B, D) the gradient at the last activations A (B, C, h, w) is the same at every position:

    dS/dA[b, k, i, j] = (1 / hw) * sum_d g[b, d] * (gamma_d / sigma_d) * W[d, k]

with g = e / |e| for the embedding's norm and g = s * (w_c - cos_c * e/|e|) / |e| for the largest ArcFace
logit (w_c the predicted class's unit weight). Grad-CAM++'s alpha and weights then need only this vector
and the activation sums: no backward pass, so the whole map is part of the forward graph. It holds for
this head only; any other head keeps the autograd path (`GradCAMPlusPlus`).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import ArcFace, EmbeddingHead, FaceNet

# (embeddings (B, D), labels (B,) or None) -> one score per image (B,); only `true_class` reads labels.
Target = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

LABEL_FREE_TARGETS = ("embedding_norm", "predicted_class")
NORMALIZE_EPS = 1e-12  # F.normalize's default, used by ArcFace


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


def closed_form_applies(model: FaceNet) -> bool:
    """Whether the gradient at the trunk's output is the closed form above: an `EmbeddingHead` (average
    pooling to 1x1, linear, BatchNorm1d on running statistics) in eval mode."""
    head = getattr(model, "head", None)
    return (
        isinstance(head, EmbeddingHead)
        and isinstance(head.pool, nn.AdaptiveAvgPool2d)
        and head.pool.output_size in (1, (1, 1))
        and head.bn.running_var is not None
        and not model.training
    )


def embedding_gradient(target: str, embedding: torch.Tensor, head: ArcFace | None = None) -> torch.Tensor:
    """dS/de (B, D) of a label-free target, in closed form (`make_target` gives S itself)."""
    norm = embedding.norm(dim=1, keepdim=True)
    if target == "embedding_norm":
        return embedding / norm
    if target == "predicted_class":
        if head is None:
            raise ValueError("predicted_class needs the model's ArcFace head")
        scaled = norm.clamp_min(NORMALIZE_EPS)  # F.normalize's division, as ArcFace does it
        unit = embedding / scaled
        weight = F.normalize(head.weight, dim=1)
        best = weight[(unit @ weight.t()).argmax(dim=1)]  # (B, D): the predicted class's unit weight
        cos = (unit * best).sum(dim=1, keepdim=True)
        tangent = torch.where(norm > NORMALIZE_EPS, best - cos * unit, best)  # below eps: a plain division
        return head.scale * tangent / scaled
    raise ValueError(f"no closed-form gradient for the Grad-CAM++ target {target!r}")


def activation_gradient(head: EmbeddingHead, grad_embedding: torch.Tensor, positions: int) -> torch.Tensor:
    """dS/dA (B, C), the same at each of the `positions` (h * w) of the activations: g diag(gamma/sigma) W."""
    bn = head.bn
    gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    jacobian = (gamma / torch.sqrt(bn.running_var + bn.eps)).unsqueeze(1) * head.linear.weight  # (D, C)
    return grad_embedding @ jacobian / positions


def uniform_gradcam_plusplus_map(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """`gradcam_plusplus_map` for a gradient that is the same at every position, given per channel (B, C):
    the sum over positions of eq. 19's identical terms is hw times one of them."""
    positions = activations.shape[-1] * activations.shape[-2]
    g = grads[:, :, None, None]
    g2 = g * g
    sum_activations = activations.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + sum_activations * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = positions * g.clamp_min(0) * alpha
    return (weights * activations).sum(dim=1, keepdim=True).clamp_min(0)


def closed_form_coarse(
    head: EmbeddingHead,
    activations: torch.Tensor,
    embedding: torch.Tensor,
    target: str,
    arcface: ArcFace | None = None,
) -> torch.Tensor:
    """`GradCAMPlusPlus.coarse`'s min-maxed maps (B, 1, h, w) from the forward pass alone."""
    positions = activations.shape[-1] * activations.shape[-2]
    grads = activation_gradient(head, embedding_gradient(target, embedding, arcface), positions)
    return _minmax(uniform_gradcam_plusplus_map(activations, grads))


class ClosedFormGradCAMPlusPlus:
    """`GradCAMPlusPlus` without the backward pass, for heads where the closed form holds; `cam(x)` ->
    (heatmaps (B, 1, H, W), embeddings (B, D)), equal to the autograd path within float rounding."""

    def __init__(self, model: FaceNet, target: str, head: ArcFace | None = None):
        if not closed_form_applies(model):
            raise ValueError("the closed form needs an EmbeddingHead in eval mode; use GradCAMPlusPlus")
        if target not in LABEL_FREE_TARGETS or (target == "predicted_class" and head is None):
            raise ValueError(f"closed-form targets: {LABEL_FREE_TARGETS} (predicted_class with its head)")
        self.model, self.target, self.head = model, target, head

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse, embedding = self.coarse(x)
        return upsample_map(coarse, x.shape[-2:]), embedding

    def coarse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            activations = self.model.trunk(x)
            embedding = self.model.head(activations)
            return closed_form_coarse(
                self.model.head, activations, embedding, self.target, self.head
            ), embedding


def upsample_map(coarse: torch.Tensor, size) -> torch.Tensor:
    """A coarse map (B, 1, h, w) -> the heatmap at `size`, in [0, 1] (pytorch-grad-cam's resize step)."""
    cam = F.interpolate(coarse.float(), size=size, mode="bilinear", align_corners=False)
    return _minmax(cam.clamp_min(0))
