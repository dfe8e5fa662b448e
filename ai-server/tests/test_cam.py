"""Grad-CAM++ three ways, held to pytorch-grad-cam on real faces (max difference <= 1e-4): the autograd
path (research, any head), the closed form (no backward pass) and the shipped ONNX graphs that compute it
in ONNX Runtime, whose embeddings also equal torch's (cosine >= 0.9999)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus
from torch import nn

from ai_server.core.cam import ClosedFormGradCAMPlusPlus, GradCAMPlusPlus, closed_form_applies, make_target
from ai_server.core.models import ARCHS, ArcFace, build_model, load_model, model_input
from ai_server.core.recognizer import Recognizer, eval_target, load_recognizer
from ai_server.core.shipping import export_model
from ai_server.core.weights import default_weights_dir, load_manifest
from ai_server.research.heatmaps import cached_heatmaps
from ai_server.serving.pipeline.runtime import Graph, ServedModel


class EmbeddingNorm:
    """pytorch-grad-cam target for one image's output: the norm of its embedding."""

    def __call__(self, output):
        return output.norm()


def _reference(model, x, targets, head=None):
    net = model if head is None else torch.nn.Sequential(model, head).eval()
    cam = ReferenceGradCAMPlusPlus(model=net, target_layers=[model.trunk[-1]])
    return cam(input_tensor=x, targets=targets)


@pytest.mark.parametrize("arch", ARCHS)
def test_equals_pytorch_grad_cam_on_real_faces(arch, faces):
    torch.manual_seed(0)
    model = build_model(arch).to(memory_format=torch.channels_last).eval()
    head = ArcFace(512, 10).eval()
    x = model_input(faces[:16].float() / 255)
    ours, emb = GradCAMPlusPlus(model, make_target("embedding_norm"))(x)
    ref = _reference(model, x, [EmbeddingNorm()] * len(x))
    assert ours.shape == (16, 1, 112, 112)
    assert np.abs(ours[:, 0].numpy() - ref).max() <= 1e-4
    assert torch.allclose(emb, model(x), atol=1e-5)
    closed, closed_emb = ClosedFormGradCAMPlusPlus(model, "embedding_norm")(x)
    assert (closed - ours).abs().max() <= 1e-5 and torch.equal(closed_emb, emb)
    ours, _ = GradCAMPlusPlus(model, make_target("predicted_class", head))(x)
    ref = _reference(model, x, None, head)  # None = pytorch-grad-cam's top predicted class
    assert np.abs(ours[:, 0].numpy() - ref).max() <= 1e-4
    closed, _ = ClosedFormGradCAMPlusPlus(model, "predicted_class", head)(x)
    assert (closed - ours).abs().max() <= 1e-5


def test_equals_pytorch_grad_cam_for_a_trained_model(tiny_runs, faces):
    model, head, _ = load_model(tiny_runs["base"])
    x = model_input(faces.float() / 255)
    for target, ref_targets, ref_head in [
        ("embedding_norm", [EmbeddingNorm()] * len(x), None),
        ("predicted_class", None, head),
    ]:
        ours, _ = GradCAMPlusPlus(model, make_target(target, head))(x)
        ref = _reference(model, x, ref_targets, ref_head)
        assert np.abs(ours[:, 0].numpy() - ref).max() <= 1e-4
        closed, _ = ClosedFormGradCAMPlusPlus(model, target, head)(x)
        assert np.abs(closed[:, 0].numpy() - ref).max() <= 1e-4


class _NonlinearHead(nn.Module):
    """A head where the gradient at the activations is not spatially uniform (a conv before pooling)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 1)
        self.linear = nn.Linear(8, 16)

    def forward(self, features):
        return self.linear(F.relu(self.conv(features)).mean(dim=(2, 3)))


def test_heads_without_the_closed_form_keep_the_autograd_path(faces, tmp_path):
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x1_0").eval()
    model.head = _NonlinearHead(1024).eval()
    assert not closed_form_applies(model)
    with pytest.raises(ValueError, match="closed form"):
        ClosedFormGradCAMPlusPlus(model, "embedding_norm")
    x = model_input(faces[:8].float() / 255)
    ours, _ = GradCAMPlusPlus(model, make_target("embedding_norm"))(x)
    assert np.abs(ours[:, 0].numpy() - _reference(model, x, [EmbeddingNorm()] * len(x))).max() <= 1e-4
    trained = build_model("shufflenet_v2_x1_0").train()  # BatchNorm on batch statistics: no closed form
    assert not closed_form_applies(trained)


def _uint8_faces(faces: torch.Tensor) -> np.ndarray:
    return faces.permute(0, 2, 3, 1).contiguous().numpy()


def _cosine(a: np.ndarray, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(torch.from_numpy(a), b).min())


def test_the_shipped_graphs_equal_pytorch_grad_cam_and_torch_on_real_faces(faces):
    """The repository's default Heatmap model (or its first one, when the default is a Base model) in
    ONNX Runtime: its source's map and its own map equal pytorch-grad-cam's on the same weights, its
    embeddings torch's; every other shipped graph embeds as torch does."""
    weights = default_weights_dir()
    manifest = load_manifest(weights)
    models = manifest["models"]
    name = next(n for n in [manifest["default"], *models] if models[n]["heatmap_source"])
    served = ServedModel(weights, manifest, name).run(_uint8_faces(faces))
    torch_model = load_recognizer(weights, name, manifest)
    source, model, size = torch_model.cam.model, torch_model.model, torch_model.input_size
    rgb = faces.float() / 255
    x = model_input(rgb, size=size)
    assert np.abs(served.heatmap[:, 0] - _reference(source, x, [EmbeddingNorm()] * len(x))).max() <= 1e-4
    x4 = model_input(rgb, torch.from_numpy(served.heatmap), size)
    assert np.abs(served.explanation[:, 0] - _reference(model, x4, [EmbeddingNorm()] * len(x))).max() <= 1e-4
    with torch.no_grad():
        assert _cosine(served.source_embedding, source(x)) >= 0.9999
        assert _cosine(served.embedding, model(x4)) >= 0.9999
    for other in manifest["models"]:  # every shipped graph embeds as torch does from the same file
        out = ServedModel(weights, manifest, other).run(_uint8_faces(faces[:8]))
        expected = load_recognizer(weights, other, manifest).run(rgb[:8]).embedding
        assert _cosine(out.embedding, expected) >= 0.9999, other


def test_a_batch_split_over_threads_gives_what_one_pass_gives(tiny_weights, faces):
    """threads > 1 runs parts of a batch on threads of their own (2 + 2 + 1 faces here), joined in order."""
    manifest = load_manifest(tiny_weights)
    batch = _uint8_faces(faces[:5])
    whole = ServedModel(tiny_weights, manifest, "tiny-heatmap").run(batch)
    split = ServedModel(tiny_weights, manifest, "tiny-heatmap", threads=3).run(batch)
    for field in ("embedding", "source_embedding", "heatmap", "explanation"):
        assert getattr(split, field).shape == getattr(whole, field).shape, field
        assert _relative_difference(getattr(split, field), getattr(whole, field)) <= 1e-6, field
    single = ServedModel(tiny_weights, manifest, "tiny-heatmap", threads=3).run(batch[1:2])
    assert _relative_difference(single.embedding, whole.embedding[1:2]) <= 1e-6  # fewer faces than threads


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference over the largest magnitude: a batch of 2 takes other kernel blocks than a batch
    of 5 on some CPUs (AVX2-only AMD EPYC: 1.6e-7 of embeddings of magnitude 70, 1.5 float32 steps), while
    a face out of order or another face's vector would differ by its whole size."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_a_base_graph_can_carry_the_predicted_class_map(tiny_runs, faces, tmp_path):
    """A Base model whose Heatmap models read predicted-class maps ships that map as well."""
    export_model(tiny_runs["base"], tmp_path, "base", extra_targets=("predicted_class",))
    graph = Graph(tmp_path / "base.onnx", threads=1)
    assert graph.outputs >= {"embedding", "explanation", "heatmap_predicted_class", "arcface.weight"}
    own, predicted = graph.run(["explanation", "heatmap_predicted_class"], faces=_uint8_faces(faces[:8]))
    model, head, _ = load_model(tmp_path / "base.onnx")
    x = model_input(faces[:8].float() / 255)
    assert np.abs(predicted[:, 0] - _reference(model, x, None, head)).max() <= 1e-4
    assert np.abs(own[:, 0] - _reference(model, x, [EmbeddingNorm()] * 8)).max() <= 1e-4


@pytest.mark.parametrize("size", [112, 224])
def test_heatmaps_are_unit_range_maps_at_input_size(size, tiny_runs, faces):
    model, head, _ = load_model(tiny_runs["base"])
    heat, _ = GradCAMPlusPlus(model, make_target("embedding_norm"))(
        model_input(faces.float() / 255, size=size)
    )
    assert heat.shape == (32, 1, size, size)
    assert heat.min() >= 0 and heat.max() <= 1
    per_image_max = heat.flatten(1).max(dim=1).values
    assert (per_image_max > 0.99).all()  # normalised per image, not per batch


def test_label_target_only_when_asked(tiny_runs):
    _, head, _ = load_model(tiny_runs["base"])
    with pytest.raises(ValueError, match="training-time only"):
        make_target("true_class", head)
    make_target("true_class", head, allow_labels=True)
    assert eval_target({"heatmap": {"target": "true_class"}}) == "predicted_class"
    assert eval_target({"heatmap": {"target": "embedding_norm"}}) == "embedding_norm"
    model, _, _ = load_model(tiny_runs["base"])
    with pytest.raises(ValueError, match="label-free"):
        Recognizer(model, head, 112, model, head, cam_target="true_class")


def test_label_free_targets_ignore_labels_and_the_label_target_does_not(tiny_runs, faces):
    model, head, _ = load_model(tiny_runs["base"])
    x = model_input(faces[:8].float() / 255)
    labels_a, labels_b = torch.zeros(8, dtype=torch.long), torch.full((8,), 3)
    for name in ("embedding_norm", "predicted_class"):
        cam = GradCAMPlusPlus(model, make_target(name, head))
        assert torch.equal(cam(x, labels_a)[0], cam(x, labels_b)[0])
    cam = GradCAMPlusPlus(model, make_target("true_class", head, allow_labels=True))
    assert not torch.equal(cam(x, labels_a)[0], cam(x, labels_b)[0])


def test_heatmap_cache(tiny_runs, faces, tmp_path):
    cache = tmp_path / "cache"
    first = cached_heatmaps(faces, tiny_runs["base"], "embedding_norm", 112, cache)
    files = list(cache.glob("*.npy"))
    assert len(files) == 1 and first.dtype == torch.float16 and first.shape == (32, 1, 112, 112)
    model, _, _ = load_model(tiny_runs["base"])
    direct, _ = GradCAMPlusPlus(model, make_target("embedding_norm"))(model_input(faces.float() / 255))
    assert (first.float() - direct).abs().max() < 1e-3  # float16 storage
    np.save(files[0], np.zeros((32, 1, 112, 112), dtype=np.float16))  # prove the second call reads it
    assert cached_heatmaps(faces, tiny_runs["base"], "embedding_norm", 112, cache).abs().max() == 0
    cached_heatmaps(faces[:16], tiny_runs["base"], "embedding_norm", 112, cache)
    cached_heatmaps(faces, tiny_runs["base"], "predicted_class", 112, cache)
    assert len(list(cache.glob("*.npy"))) == 3  # other images, other target: other entries
