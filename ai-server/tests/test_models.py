import copy
import math

import pytest
import torch

from ai_server.core.models import ARCHS, ArcFace, build_model, load_model, model_input, save_model, widen_stem


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    """Give BatchNorm layers non-trivial statistics so that equality tests mean something."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [3, 4])
def test_shapes(arch, channels):
    model = build_model(arch, channels, embedding_dim=128).eval()
    assert model.in_channels == channels
    x = torch.randn(2, channels, 112, 112)
    assert model(x).shape == (2, 128)
    assert model.trunk(x).shape[-2:] == (4, 4)  # last conv block at stride 32
    assert model(torch.randn(2, channels, 224, 224)).shape == (2, 128)


@pytest.mark.parametrize("arch", ARCHS)
def test_widened_stem_with_zero_heatmap_reproduces_the_base_model(arch, faces):
    torch.manual_seed(1)
    base = build_model(arch, 3).eval()
    _randomise_batchnorm(base)
    wide = widen_stem(copy.deepcopy(base)).eval()
    rgb = faces[:8].float() / 255
    expected = base(model_input(rgb))
    got = wide(model_input(rgb, torch.zeros(8, 1, 112, 112)))
    assert torch.equal(got, expected)
    stem = wide.trunk[0][0] if arch != "shufflenet_v2_x1_0" else wide.trunk.conv1[0]
    assert stem.in_channels == 4
    assert torch.equal(stem.weight[:, 3], stem.weight[:, :3].mean(dim=1))
    # and the heatmap channel does change the output once it is not zero
    assert not torch.allclose(wide(model_input(rgb, torch.ones(8, 1, 112, 112))), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="in_channels"):
        build_model("efficientnet_b0", 5)
    with pytest.raises(ValueError, match="already"):
        widen_stem(build_model("efficientnet_b0", 4))


def test_arcface_margin():
    head = ArcFace(8, 3, scale=10.0, margin=0.5)
    emb = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    plain = head(emb)
    cos = plain / 10.0
    assert torch.allclose(
        cos, torch.nn.functional.cosine_similarity(emb[:, None], head.weight[None], dim=2), atol=1e-6
    )
    with_margin = head(emb, labels)
    true = torch.nn.functional.one_hot(labels, 3).bool()
    assert torch.equal(with_margin[~true], plain[~true])  # other classes untouched
    theta = torch.acos(cos[true].clamp(-1, 1))
    ok = theta < math.pi - 0.5
    expected = torch.where(
        ok, 10.0 * torch.cos(theta + 0.5), 10.0 * (cos[true] - math.sin(math.pi - 0.5) * 0.5)
    )
    assert torch.allclose(with_margin[true], expected, atol=1e-4)
    assert torch.equal(head(emb, labels, margin=0.0), plain)  # warm-up start: no margin


def test_easy_margin_leaves_obtuse_angles_alone():
    head = ArcFace(2, 1, scale=1.0, margin=0.5, easy_margin=True)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0]]))
    emb = torch.tensor([[-1.0, 0.2], [1.0, 0.2]])
    out = head(emb, torch.tensor([0, 0]))
    cos = head(emb)
    assert out[0, 0] == cos[0, 0]  # cos < 0: no margin
    assert out[1, 0] < cos[1, 0]


def test_model_file_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x1_0", 4).to(memory_format=torch.channels_last).eval()
    head = ArcFace(512, 7)
    config = {
        "arch": "shufflenet_v2_x1_0",
        "in_channels": 4,
        "embedding_dim": 512,
        "dropout": 0.2,
        "num_classes": 7,
        "scale": 64.0,
        "margin": 0.5,
        "easy_margin": False,
    }
    sha = save_model(tmp_path / "m.pt", model, head, config)
    loaded, loaded_head, loaded_config = load_model(tmp_path / "m.pt", expect_sha256=sha)
    x = torch.randn(3, 4, 112, 112)
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded_head.weight, head.weight)
    assert loaded_config == config
    with pytest.raises(ValueError, match="sha256"):
        load_model(tmp_path / "m.pt", expect_sha256="0" * 64)
    # float16 weights (as shipped) load into a float32 model
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"config": config, "model": half, "head": head.state_dict()}, tmp_path / "h.pt")
    loaded16, _, _ = load_model(tmp_path / "h.pt")
    assert next(loaded16.parameters()).dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(loaded16(x), model(x)).min() > 0.999
