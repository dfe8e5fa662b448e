import pytest
import torch

from ai_server.research.perturb import (
    ALL_CONDITIONS,
    Condition,
    ablate_heatmaps,
    condition_generator,
    derangement,
    occlusion_mask,
    perturb,
)


def test_condition_names():
    assert len(ALL_CONDITIONS) == 13
    assert [Condition.parse(c.name) for c in ALL_CONDITIONS] == ALL_CONDITIONS
    assert Condition.parse("occlusion_0.3") == Condition("occlusion", 0.3)
    with pytest.raises(ValueError):
        Condition.parse("blur_2")


def test_original_and_brightness(faces):
    rgb = faces.float() / 255
    g = condition_generator(0)
    assert perturb(rgb, Condition.parse("original"), g) is rgb
    assert torch.equal(perturb(rgb, Condition("brightness", 0.7), g), rgb * 0.7)
    bright = perturb(rgb, Condition("brightness", 1.3), g)
    assert torch.equal(bright, (rgb * 1.3).clamp(0, 1)) and bright.max() == 1.0


@pytest.mark.parametrize("area", [0.1, 0.2, 0.3, 0.4])
def test_occlusion_area_and_seeding(faces, area):
    rgb = faces.float() / 255
    mask = occlusion_mask(rgb, area, condition_generator(0))
    assert (mask.flatten(1).float().mean(1) - area).abs().max() < 0.01
    out = perturb(rgb, Condition("occlusion", area), condition_generator(0))
    assert (out[mask.expand_as(out)] == 0).all() and torch.equal(
        out[~mask.expand_as(out)], rgb[~mask.expand_as(rgb)]
    )
    again = perturb(rgb, Condition("occlusion", area), condition_generator(0))
    other = perturb(rgb, Condition("occlusion", area), condition_generator(0, repeat=1))
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_noise_sigma():
    grey = torch.full((4, 3, 112, 112), 0.5)
    for sigma in (0.05, 0.1, 0.15):  # no clipping at these levels around mid grey
        noisy = perturb(grey, Condition("noise", sigma), condition_generator(0))
        assert abs((noisy - grey).std().item() - sigma) < 0.003


def test_fourth_channel_ablations():
    heat = torch.rand(50, 1, 8, 8)
    assert torch.equal(ablate_heatmaps(heat, "normal", 0), heat)
    assert ablate_heatmaps(heat, "zero", 0).abs().max() == 0
    rnd = ablate_heatmaps(heat, "random", 0)
    assert rnd.min() >= 0 and rnd.max() < 1 and not torch.equal(rnd, heat)
    perm = derangement(50, 0)
    assert sorted(perm.tolist()) == list(range(50)) and (perm != range(50)).all()
    shuffled = ablate_heatmaps(heat, "shuffle", 0)
    assert torch.equal(shuffled, heat[torch.from_numpy(perm)])
    with pytest.raises(ValueError):
        ablate_heatmaps(heat, "blur", 0)
