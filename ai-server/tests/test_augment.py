import pytest
import torch

from ai_server.research.augment import AugmentConfig, augment

GEOMETRY_ONLY = AugmentConfig(brightness=0, contrast=0, saturation=0, blur=0, erase=0)
IDENTITY = AugmentConfig(
    scale=(1, 1), ratio=(1, 1), rotation=0, flip=0, brightness=0, contrast=0, saturation=0, blur=0, erase=0
)


def _sample(faces):
    rgb = faces[:16].float() / 255
    heat = rgb.mean(dim=1, keepdim=True)  # a "heatmap" with the face's structure, to check alignment
    return rgb, heat


def test_identity_config_changes_nothing(faces):
    rgb, heat = _sample(faces)
    out_rgb, out_heat = augment(rgb, heat, 112, IDENTITY, torch.Generator().manual_seed(0))
    assert torch.allclose(out_rgb, rgb, atol=1e-5) and torch.allclose(out_heat, heat, atol=1e-5)


def test_flip(faces):
    rgb, heat = _sample(faces)
    cfg = AugmentConfig(**{**IDENTITY.__dict__, "flip": 1.0})
    out_rgb, out_heat = augment(rgb, heat, 112, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out_rgb, rgb.flip(-1), atol=1e-5)
    assert torch.allclose(out_heat, heat.flip(-1), atol=1e-5)


@pytest.mark.parametrize("size", [112, 224])
def test_geometry_moves_rgb_and_heatmap_together(faces, size):
    rgb, heat = _sample(faces)
    out_rgb, out_heat = augment(rgb, heat, size, GEOMETRY_ONLY, torch.Generator().manual_seed(1))
    assert out_rgb.shape == (16, 3, size, size) and out_heat.shape == (16, 1, size, size)
    assert not torch.allclose(out_rgb[:, :, :112, :112], rgb, atol=0.05)  # something did move
    assert torch.allclose(out_rgb.mean(dim=1, keepdim=True), out_heat, atol=1e-5)


def test_photometric_touches_rgb_only_and_erasing_hits_both(faces):
    rgb, heat = _sample(faces)
    heat = 0.5 + 0.5 * heat  # never 0, so that 0 marks the erased pixels
    cfg = AugmentConfig(
        scale=(1, 1), ratio=(1, 1), rotation=0, flip=0, blur=1.0, erase=1.0, erase_scale=(0.1, 0.1)
    )
    out_rgb, out_heat = augment(rgb, heat, 112, cfg, torch.Generator().manual_seed(2))
    erased = out_heat == 0
    assert (erased.flatten(1).float().mean(1) - 0.1).abs().max() < 0.02
    assert (out_rgb.masked_select(erased.expand_as(out_rgb)) == 0.5).all()
    keep = ~erased
    assert torch.allclose(out_heat[keep], heat[keep], atol=1e-5)  # heatmap otherwise untouched
    assert not torch.allclose(out_rgb, rgb, atol=0.02)
    assert out_rgb.min() >= 0 and out_rgb.max() <= 1


def test_same_seed_same_batch(faces):
    rgb, heat = _sample(faces)
    a = augment(rgb, heat, 112, AugmentConfig(), torch.Generator().manual_seed(3))
    b = augment(rgb, heat, 112, AugmentConfig(), torch.Generator().manual_seed(3))
    c = augment(rgb, heat, 112, AugmentConfig(), torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    rgb_only, none = augment(rgb, None, 112, AugmentConfig(), torch.Generator().manual_seed(3))
    assert none is None and torch.equal(rgb_only, a[0])
