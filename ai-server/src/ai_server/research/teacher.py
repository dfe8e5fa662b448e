"""dlib's face-recognition ResNet as a distillation teacher (training only; never served).

The teacher (`dlib_face_recognition_resnet_model_v1`, 128-d, LFW 99.38% by its author) and dlib's 5-point
shape predictor are weights inside the PyPI package `face_recognition_models` 0.3.0, run by the `dlib-bin`
20.0.1.post1 wheel. Licences: dlib-bin is dlib under the Boost Software License 1.0; the models package's
LICENSE file is CC0 1.0 Universal (its metadata says MIT; dlib's author released these two models without
restrictions). The package also holds a 68-point predictor trained on iBUG 300-W, whose data is not licensed
for commercial use: it is not used here. Both packages are pinned in requirements-dev.lock only; the serving
requirements and image never contain them.

Our crops are already aligned to the ArcFace template, so no detector runs: a fixed face box (the median
of dlib's HOG detector on our crops, `FACE_BOX`) goes to the 5-point shape predictor, and dlib itself cuts
its 150x150 chip (`get_face_chip`, padding 0.25) from those landmarks, exactly as `face_recognition` does
after detection. Embeddings are cached per image content (sha256 of the pixels), so an image is embedded
once whatever set it comes in, and a mirrored training image gets its own mirrored-image embedding.
"""

import hashlib
import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import torch

TEACHER_DIM = 128
# left, top, right, bottom: the median of dlib.get_frontal_face_detector() (upsample 1) on 109 of 120
# evenly spaced CelebA crops (it found no face in 11); the shape predictor refines from there.
FACE_BOX = (16, 26, 96, 113)
CHIP_SIZE, CHIP_PADDING = 150, 0.25
CACHE_TAG = "dlib-resnet-v1-5pt"  # part of every cache file name: another teacher never reuses them


def model_files() -> tuple[Path, Path]:
    """(shape predictor, ResNet) inside the installed `face_recognition_models`, found without importing
    it (its __init__ needs pkg_resources, which current setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the teacher needs the training-only packages: pip install --no-deps "
            "dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 (see requirements-dev.lock)"
        )
    models = Path(spec.submodule_search_locations[0]) / "models"
    return (
        models / "shape_predictor_5_face_landmarks.dat",
        models / "dlib_face_recognition_resnet_model_v1.dat",
    )


class Teacher:
    def __init__(self):
        import dlib

        predictor, resnet = model_files()
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(predictor))
        self.resnet = dlib.face_recognition_model_v1(str(resnet))
        self.box = dlib.rectangle(*FACE_BOX)

    def chip(self, rgb: np.ndarray) -> np.ndarray:
        """One aligned crop (H, W, 3) uint8 -> dlib's own 150x150 chip from its 5 landmarks."""
        shape = self.predictor(rgb, self.box)
        return self.dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def embed(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """uint8 (N, 3, H, W) RGB -> float32 (N, 128) embeddings as dlib gives them (norm about 1.5)."""
        out = []
        hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
        for start in range(0, len(hwc), batch_size):
            chips = [self.chip(np.ascontiguousarray(x)) for x in hwc[start : start + batch_size]]
            out.append(np.asarray(self.resnet.compute_face_descriptor(chips), dtype=np.float32))
        return np.concatenate(out) if out else np.zeros((0, TEACHER_DIM), np.float32)


def image_keys(images: torch.Tensor) -> list[str]:
    """sha256 of each image's pixels (not of its file), the cache key."""
    return [hashlib.sha256(x.numpy().tobytes()).hexdigest()[:24] for x in images]


def _read_cache(cache_dir: Path) -> dict[str, np.ndarray]:
    known = {}
    for path in sorted(cache_dir.glob(f"{CACHE_TAG}-*.npz")):
        with np.load(path) as f:
            known.update(zip(f["keys"].tolist(), f["embeddings"], strict=True))
    return known


def cached_embeddings(
    images: torch.Tensor,
    cache_dir: str | os.PathLike,
    mirrors: bool = True,
    teacher: Teacher | None = None,
    chunk: int = 1024,
    log=print,
) -> torch.Tensor:
    """Teacher embeddings of uint8 images (N, 3, H, W): (N, 128), or (N, 2, 128) with `mirrors` (the
    image, then its horizontal mirror). Missing ones are computed and written as one new .npz, so runs
    sharing a cache folder never overwrite each other's files."""
    cache_dir = Path(cache_dir)
    views = [images, images.flip(-1)] if mirrors else [images]
    flat = torch.cat(views)
    keys = image_keys(flat)
    known = _read_cache(cache_dir) if cache_dir.exists() else {}
    missing = sorted({i for i, k in enumerate(keys) if k not in known}, key=keys.__getitem__)
    missing = list({keys[i]: i for i in missing}.values())  # one computation per distinct image
    for start in range(0, len(missing), chunk):  # one file per chunk: progress survives an interruption
        part = missing[start : start + chunk]
        log(f"teacher: embedding {start}-{start + len(part)} of {len(missing)} new images ({cache_dir})")
        teacher = teacher or Teacher()
        new = teacher.embed(flat[part])
        new_keys = [keys[i] for i in part]
        cache_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("".join(new_keys).encode()).hexdigest()[:16]
        path = cache_dir / f"{CACHE_TAG}-{name}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(new_keys), embeddings=new.astype(np.float32))
        os.replace(tmp, path)
        known.update(zip(new_keys, new, strict=True))
    out = torch.from_numpy(np.stack([known[k] for k in keys])) if keys else torch.zeros(0, TEACHER_DIM)
    return out.view(len(views), len(images), TEACHER_DIM).transpose(0, 1) if mirrors else out


def _view_file(cache_dir: Path, vid: str, view: int, paths: list[str]) -> Path:
    chunk_id = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    return cache_dir / f"{CACHE_TAG}-views{vid}-v{view}-{chunk_id}.npz"


_worker_teacher: "Teacher | None" = None


def _init_worker() -> None:
    """One single-threaded teacher per process: the processes are the parallelism."""
    global _worker_teacher
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    torch.set_num_threads(1)
    _worker_teacher = Teacher()


def _embed_view(task: tuple[str, list[str], int, str, dict, int]) -> tuple[str, float]:
    from . import data
    from .augment import AugmentConfig
    from .views import render

    file, paths, view, root, augment, seed = task
    started = time.perf_counter()
    images = data.load_images(paths, Path(root))
    cfg = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()})
    rendered = render(images, paths, torch.full((len(paths),), view), cfg, seed)
    emb = _worker_teacher.embed(rendered)
    tmp = Path(file).with_name(Path(file).name + ".tmp.npz")
    np.savez(tmp, paths=np.array(paths), view=view, embeddings=emb.astype(np.float32))
    os.replace(tmp, file)
    return file, time.perf_counter() - started


def view_targets(
    paths: list[str],
    n_views: int,
    cache_dir: str | os.PathLike,
    augment=None,
    workers: int = 2,
    chunk: int = 256,
    seed: int | None = None,
    log=print,
) -> torch.Tensor:
    """The teacher's embedding of views 0..n_views-1 (`views.render`) of every image: (N, n_views, 128).

    Built in chunks of `chunk` images x one view, each its own .npz named by the views' definition, the
    view and the chunk's paths, so an interrupted build resumes where it stopped and a changed image
    list or augmentation never reuses a stale target. Views go in order (all of view 0 first), so a
    build cut short still leaves whole views behind. `workers` processes embed in parallel.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from . import data
    from .augment import AugmentConfig
    from .views import VIEW_SEED, views_id

    augment = augment or AugmentConfig()
    seed = VIEW_SEED if seed is None else seed
    vid = views_id(augment, seed)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    files = [[_view_file(cache_dir, vid, v, c) for c in chunks] for v in range(n_views)]
    todo = [
        (str(files[v][i]), chunks[i], v, str(data.data_dir()), augment.__dict__, seed)
        for v in range(n_views)
        for i in range(len(chunks))
        if not files[v][i].exists()
    ]
    if todo:
        log(f"teacher views: {len(todo)} of {n_views * len(chunks)} chunks to embed ({cache_dir})")
        started, done = time.perf_counter(), 0
        with ProcessPoolExecutor(workers, get_context("spawn"), initializer=_init_worker) as pool:
            for file, seconds in pool.map(_embed_view, todo):
                done += 1
                rate = (time.perf_counter() - started) / done
                log(
                    f"teacher views: {done}/{len(todo)} {Path(file).name} {seconds:.0f} s, "
                    f"eta {rate * (len(todo) - done) / 60:.0f} min"
                )
    out = np.zeros((len(paths), n_views, TEACHER_DIM), np.float32)
    for v in range(n_views):
        start = 0
        for i, c in enumerate(chunks):
            with np.load(files[v][i]) as f:
                if f["paths"].tolist() != c:
                    raise ValueError(f"{files[v][i]} holds other images than its name says")
                out[start : start + len(c), v] = f["embeddings"]
            start += len(c)
    return torch.from_numpy(out)


def evaluate_teacher(
    out_path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    pairs_per_fold: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    pair_sets: tuple[str, ...] = ("celeba_val", "lfw"),
    identity_ci: bool = False,
    centre: torch.Tensor | None = None,
    log=print,
) -> dict:
    """The teacher through our open-set protocol (the same `open_set_report` as the students), so its
    numbers sit in the same table. One embedding per image, as dlib is used (no flip TTA). With `centre`
    (the mean of the normalised training targets) also `embedding_centred`: the space a centred student
    is trained to reproduce, and so its ceiling."""
    import json

    from . import data
    from .evaluate import open_set_report

    def vectors_of(paths: list[str]) -> dict[str, torch.Tensor]:
        emb = cached_embeddings(data.load_images(paths), cache_dir, mirrors=False, log=log)
        unit = torch.nn.functional.normalize(emb, dim=1)  # the protocol scores cosines
        if centre is None:
            return {"embedding": unit}
        return {"embedding": unit, "embedding_centred": torch.nn.functional.normalize(unit - centre, dim=1)}

    started = time.perf_counter()
    metrics = {
        "model": {
            "arch": "dlib_resnet_v1",
            "embedding_dim": TEACHER_DIM,
            "face_box": FACE_BOX,
            "flip_tta": False,
        },
        "protocol": {
            "pairs_per_fold": pairs_per_fold,
            "bootstrap": n_boot,
            "ci": "identity bootstrap" if identity_ci else "row bootstrap",
            "seed": seed,
        },
        "closed_set": {},
        "ablation": {},
        "verification": {},
        "identification": {},
    }
    for name in pair_sets:
        result = open_set_report(vectors_of, name, pairs_per_fold, seed, n_boot, identity_ci)
        metrics["verification"][name] = result["verification"]
        if "identification" in result:
            metrics["identification"][name] = result["identification"]
        log(f"teacher {name}: auc {metrics['verification'][name]['embedding']['auc']:.4f}")
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics
