import numpy as np
import torch
from PIL import Image

from ai_server.research import data


def test_training_identities():
    everyone = data.training_identities()
    assert len(everyone.classes) == 187 + 38
    assert len(everyone) == 4059 + 1700
    assert everyone.classes[187:] == [f"yaleB{i:02d}" for i in range(1, 40) if i != 14]
    val_ids = set((data.data_dir() / "splits/celeba_val_ids.txt").read_text().split())
    assert not val_ids & set(everyone.classes)
    for p, y in zip(everyone.paths[::97], everyone.labels[::97], strict=True):
        assert p.split("/")[2] == everyone.classes[y]


def test_holdout_split_is_per_identity_deterministic_and_disjoint():
    everyone = data.training_identities()
    train, held = data.holdout_split(everyone)
    assert set(train.paths).isdisjoint(held.paths)
    assert sorted(train.paths + held.paths) == sorted(everyone.paths)
    assert abs(len(held) / len(everyone) - 0.2) < 0.01
    per_class = np.bincount(held.labels, minlength=225)
    assert (per_class >= 1).all() and (np.bincount(train.labels, minlength=225) >= 1).all()
    # the same images are held out whatever other identities are loaded, and on every call
    some = everyone.in_classes(everyone.classes[::7])
    _, held_some = data.holdout_split(some)
    assert set(held_some.paths) == {p for p, y in zip(held.paths, held.labels, strict=True) if y % 7 == 0}
    assert data.holdout_split(everyone)[1].paths == held.paths


def test_evenly_spaced_keeps_whole_identities_from_first_to_last():
    """What a run's `identities`, the epoch monitor and `evaluate --max-identities` take of a set."""
    val = data.validation_identities()
    some = val.evenly_spaced(20)
    assert len(some.classes) == 20 and some.classes[::19] == val.classes[::61]  # the first and the last
    kept = set(some.classes)
    assert sorted(some.paths) == sorted(p for p in val.paths if p.split("/")[2] in kept)  # all their images
    assert all(some.classes[y] == p.split("/")[2] for p, y in zip(some.paths, some.labels, strict=True))
    assert val.evenly_spaced(None) is val and val.evenly_spaced(len(val.classes)) is val


def test_yale_dark_uses_the_training_class_order():
    classes = data.training_identities().classes
    dark = data.yale_dark(classes)
    assert len(dark) == 714 and len(set(dark.labels)) == 38
    assert all(classes[y] == p.split("/")[2] for p, y in zip(dark.paths, dark.labels, strict=True))
    assert data.yale_dark(classes[:5] + ["yaleB02"]).labels == [5] * 19


def test_pairs_files():
    lfw = data.read_pairs("lfw")
    assert len(lfw) == 6000 and lfw.same.sum() == 3000
    assert np.bincount(lfw.fold).tolist() == [600] * 10
    assert lfw.a[0] == "faces112/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert len(lfw.images()) == 7701
    assert all((data.data_dir() / p).exists() for p in lfw.images()[::50])
    val = data.read_pairs("celeba_val", per_fold=3)
    assert len(val) == 60 and val.same.sum() == 30
    val_ids = set((data.data_dir() / "splits/celeba_val_ids.txt").read_text().split())
    assert {p.split("/")[2] for p in val.a + val.b} <= val_ids


def test_load_images_decodes_exactly():
    paths = data.training_identities().paths[:3] + ["faces112/yale/yaleB01/yaleB01_P00A+000E+00.jpg"]
    images = data.load_images(paths)
    assert images.shape == (4, 3, 112, 112) and images.dtype == torch.uint8
    expected = np.asarray(Image.open(data.data_dir() / paths[3]).convert("RGB"))
    assert np.array_equal(images[3].permute(1, 2, 0).numpy(), expected)
