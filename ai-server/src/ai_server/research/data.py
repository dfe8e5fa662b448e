"""Datasets over `../shared/data`: identity splits, the held-out closed-set split, Yale dark, pairs files.

Images are aligned 112x112 JPEGs; they are decoded once into a uint8 tensor (N, 3, 112, 112) so that
training and evaluation never touch the disk or a Python per-image loop again.
"""

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.paths import in_repo

HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 20261125


def data_dir() -> Path:
    """`$FACE_DATA_DIR`, else `shared/data` beside the repository checkout."""
    if "FACE_DATA_DIR" in os.environ:
        return Path(os.environ["FACE_DATA_DIR"])
    return in_repo("..", "shared", "data")


def data_version(root: Path | None = None) -> str:
    """A short hash of the split and pairs files: which identities and images a model was trained on."""
    root = root or data_dir()
    digest = hashlib.sha256()
    for path in sorted([*(root / "splits").iterdir(), *(root / "pairs").iterdir()]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class ImageSet:
    """Image paths (relative to the data dir) with integer labels indexing `classes`."""

    paths: list[str]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: list[int]) -> "ImageSet":
        return ImageSet([self.paths[i] for i in keep], [self.labels[i] for i in keep], self.classes)

    def in_classes(self, classes: list[str]) -> "ImageSet":
        """Only the images of `classes`, labelled in that class order (e.g. a trained model's classes)."""
        index = {name: i for i, name in enumerate(classes)}
        keep = [i for i, y in enumerate(self.labels) if self.classes[y] in index]
        return ImageSet(
            [self.paths[i] for i in keep], [index[self.classes[self.labels[i]]] for i in keep], classes
        )

    def evenly_spaced(self, n: int | None) -> "ImageSet":
        """Only the images of `n` evenly spaced classes (all of them when `n` is None or not fewer)."""
        if n is None or n >= len(self.classes):
            return self
        picks = np.unique(np.linspace(0, len(self.classes) - 1, n).round().astype(int))
        return self.in_classes([self.classes[i] for i in picks])

    def label_tensor(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.long)


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _celeba_images(root: Path, identity: str) -> list[str]:
    return sorted(
        f"faces112/celeba/{identity}/{p.name}" for p in (root / "faces112/celeba" / identity).glob("*.jpg")
    )


def _yale_subject(path: str) -> str:
    return path.split("/")[2]


def training_identities(root: Path | None = None) -> ImageSet:
    """All training images: CelebA train identities (numeric order), then Yale subjects (bright, medium)."""
    root = root or data_dir()
    celeba_ids = sorted(_read_lines(root / "splits/celeba_train_ids.txt"), key=int)
    yale_paths = _read_lines(root / "splits/yale_train.txt")
    yale_ids = sorted({_yale_subject(p) for p in yale_paths})
    classes = celeba_ids + yale_ids
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for identity in celeba_ids:
        images = _celeba_images(root, identity)
        paths += images
        labels += [index[identity]] * len(images)
    for p in sorted(yale_paths):
        paths.append(p)
        labels.append(index[_yale_subject(p)])
    return ImageSet(paths, labels, classes)


def validation_identities(root: Path | None = None) -> ImageSet:
    """The CelebA val identities (never trained on): the open-set identification task."""
    root = root or data_dir()
    classes = sorted(_read_lines(root / "splits/celeba_val_ids.txt"), key=int)
    paths, labels = [], []
    for y, identity in enumerate(classes):
        images = _celeba_images(root, identity)
        paths += images
        labels += [y] * len(images)
    return ImageSet(paths, labels, classes)


def _celeba_ext_images(root: Path, identity: str) -> list[str]:
    folder = root / "faces112/celeba_ext" / identity
    return sorted(f"faces112/celeba_ext/{identity}/{p.name}" for p in folder.glob("*.jpg"))


def _labelled(root: Path, groups: list[tuple[str, list[str]]]) -> ImageSet:
    """(identity, image paths) groups -> an ImageSet whose classes are the identities in that order."""
    paths, labels = [], []
    for y, (_, images) in enumerate(groups):
        paths += images
        labels += [y] * len(images)
    return ImageSet(paths, labels, [name for name, _ in groups])


def distillation_identities(root: Path | None = None) -> ImageSet:
    """The distilled students' training set: CelebA train + celeba_ext train (7,752 identities, 41,878
    images; the two share no identity), classes in numeric identity order. No Yale: its 38 lighting-only
    subjects pull an identity loss away from the teacher's space."""
    root = root or data_dir()
    celeba = _read_lines(root / "splits/celeba_train_ids.txt")
    ext = _read_lines(root / "splits/celeba_ext_train_ids.txt")
    if set(celeba) & set(ext):
        raise ValueError("celeba and celeba_ext training identities overlap")
    groups = [(i, _celeba_images(root, i)) for i in celeba] + [(i, _celeba_ext_images(root, i)) for i in ext]
    return _labelled(root, sorted(groups, key=lambda g: int(g[0])))


def celeba_ext_validation(root: Path | None = None) -> ImageSet:
    """The 1,000 celeba_ext val identities (never trained on): identification in a gallery of 1,000."""
    root = root or data_dir()
    ids = sorted(_read_lines(root / "splits/celeba_ext_val_ids.txt"), key=int)
    return _labelled(root, [(i, _celeba_ext_images(root, i)) for i in ids])


def holdout_split(
    images: ImageSet, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED
) -> tuple[ImageSet, ImageSet]:
    """Split each identity's images into train and held-out (closed-set evaluation) parts.

    Per identity, its sorted images are shuffled by `random.Random(f"{seed}:{identity}")` and the first
    max(1, round(fraction * n)) are held out, so the split does not depend on which other identities
    are loaded (fraction 0 holds out nothing). Every identity has at least 2 images, so each keeps at
    least one for training.
    """
    if fraction == 0:
        return images, images.subset([])
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(images.labels):
        by_class.setdefault(y, []).append(i)
    train, held = [], []
    for y, idx in by_class.items():
        order = sorted(idx, key=lambda i: images.paths[i])
        random.Random(f"{seed}:{images.classes[y]}").shuffle(order)
        n_held = min(len(order) - 1, max(1, round(fraction * len(order))))
        held += order[:n_held]
        train += order[n_held:]
    return images.subset(sorted(train)), images.subset(sorted(held))


def yale_dark(classes: list[str], root: Path | None = None) -> ImageSet:
    """The Yale dark-light images (train bright, test dark), labelled in the given class order."""
    root = root or data_dir()
    paths = sorted(_read_lines(root / "splits/yale_dark.txt"))
    subjects = sorted({_yale_subject(p) for p in paths})
    return ImageSet(paths, [subjects.index(_yale_subject(p)) for p in paths], subjects).in_classes(classes)


@dataclass
class Pairs:
    """Verification pairs in the LFW `pairs.txt` layout: 10 folds, same-identity then different pairs."""

    a: list[str]
    b: list[str]
    same: np.ndarray  # bool (P,)
    fold: np.ndarray  # int (P,)

    def __len__(self) -> int:
        return len(self.a)

    def images(self) -> list[str]:
        """Every image the pairs use, once, in a stable order."""
        return sorted(set(self.a) | set(self.b))


def read_pairs(name: str, root: Path | None = None, per_fold: int | None = None) -> Pairs:
    """`name` is `lfw`, `celeba_val` or `celeba_ext_val`; `per_fold` keeps the first n same and n
    different pairs per fold."""
    root = root or data_dir()
    lines = (root / f"pairs/{name}_pairs.txt").read_text().splitlines()
    folds, n = (int(v) for v in lines[0].split())

    def path(person: str, image: str) -> str:
        if name == "lfw":
            return f"faces112/lfw/{person}/{person}_{int(image):04d}.jpg"
        if name == "celeba_ext_val":
            return f"faces112/celeba_ext/{person}/{image}"
        return f"faces112/celeba/{person}/{image}"

    a, b, same, fold = [], [], [], []
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    if len(rows) != folds * 2 * n:
        raise ValueError(f"{name}: expected {folds * 2 * n} pairs, found {len(rows)}")
    for i, row in enumerate(rows):
        f, within = divmod(i, 2 * n)
        is_same = within < n
        if per_fold is not None and within % n >= per_fold:
            continue
        if is_same:
            a.append(path(row[0], row[1]))
            b.append(path(row[0], row[2]))
        else:
            a.append(path(row[0], row[1]))
            b.append(path(row[2], row[3]))
        same.append(is_same)
        fold.append(f)
    return Pairs(a, b, np.array(same), np.array(fold))


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_images(paths: list[str], root: Path | None = None) -> torch.Tensor:
    """Decode aligned crops into one uint8 tensor (N, 3, 112, 112); two threads are enough for JPEG."""
    root = root or data_dir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = list(pool.map(_decode, (root / p for p in paths)))
    if not arrays:
        return torch.empty(0, 3, 112, 112, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
