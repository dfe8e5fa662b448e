import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus

from ai_server.core.cam import GradCAMPlusPlus, make_target
from ai_server.core.models import ARCHS, ArcFace, build_model, load_model, model_input
from ai_server.core.recognizer import Recognizer, eval_target
from ai_server.research.heatmaps import cached_heatmaps


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
    ours, _ = GradCAMPlusPlus(model, make_target("predicted_class", head))(x)
    ref = _reference(model, x, None, head)  # None = pytorch-grad-cam's top predicted class
    assert np.abs(ours[:, 0].numpy() - ref).max() <= 1e-4


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
