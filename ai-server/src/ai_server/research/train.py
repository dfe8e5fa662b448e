"""Training of Base (RGB) and Heatmap (RGB + Grad-CAM++) models, resumable at every epoch.

A run lives in one folder: `config.json` (what was asked), `state.pt` (everything needed to resume:
weights, optimiser, schedule, random generators), `model.pt` (the model file evaluation and serving load)
and `log.jsonl` (one line per epoch: losses, held-out accuracy, the val monitor, throughput, wall time).
Starting a run whose folder has a `state.pt` continues it, so a run cut off at any moment loses at most
one epoch.

Two kinds of batches: the reproduction's (ArcFace, random augmentation on the fly, optionally a teacher
target of the clean crop or its mirror), and distillation on deterministic views (`views.py`,
`teacher_views` > 0), where every image the student sees is one whose teacher embedding is stored.
"""

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.cam import GradCAMPlusPlus, make_target, upsample_map
from ..core.models import ArcFace, build_model, load_model, model_input, save_model, sha256_file, widen_stem
from ..core.recognizer import eval_target, in_batches
from . import data
from .augment import AugmentConfig, augment, geometry
from .heatmaps import cached_heatmaps
from .metrics import accuracy, macro_f1


@dataclass
class TrainConfig:
    arch: str = "shufflenet_v2_x1_0"
    in_channels: int = 3  # 3 = Base (RGB), 4 = Heatmap (RGB + H)
    embedding_dim: int = 512
    dropout: float = 0.2
    input_size: int = 112
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0  # linear learning-rate warm-up, then cosine to zero
    scale: float = 64.0
    margin: float = 0.5
    easy_margin: bool = False
    margin_warmup_epochs: float = 0.0  # margin grows linearly from 0 over these epochs
    seed: int = 0
    heatmap_source: str | None = None  # Base model file whose Grad-CAM++ maps are the 4th channel
    heatmap_target: str = "embedding_norm"  # embedding_norm | predicted_class | true_class (label!)
    allow_label_heatmaps: bool = False  # must be set to train on true_class heatmaps
    init_from: str | None = None  # model file to start from (a Base model seeds a Heatmap model)
    dataset: str = "reproduction"  # reproduction: CelebA train + Yale | distillation: + celeba_ext, no Yale
    identities: int | None = None  # evenly spaced subset of the training identities (smoke runs)
    max_steps_per_epoch: int | None = None
    holdout_fraction: float = data.HOLDOUT_FRACTION  # 0: train on every image, no closed-set check
    holdout_seed: int = data.HOLDOUT_SEED
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"  # auto = cuda when available
    # Distillation from dlib's ResNet (teacher.py); off by default. Loss = arcface_weight * ArcFace
    # + distill_weight * (1 - cos(student, teacher)) + distill_relation_weight * mean squared difference
    # of the batch's cosine-similarity matrices (student embedding vs teacher). The student is the
    # embedding itself, or with `distill_projection` a training-only linear map of it.
    arcface_weight: float = 1.0
    distill_weight: float = 0.0
    distill_relation_weight: float = 0.0
    distill_projection: bool = True
    distill_cache: str | None = None  # teacher embedding cache (default <out>/../.teacher-cache)
    # subtract the mean teacher embedding first: dlib's unit vectors share one direction (mean pairwise cosine
    # 0.84 on our training crops), which an uncentred cosine target mostly teaches
    distill_center: bool = False
    # > 0: batches are views 0..teacher_views-1 of each image (views.py), each with its own teacher target
    teacher_views: int = 0
    # > 0: one-shot identification top-1 on this many celeba_ext val identities, logged every epoch
    monitor_identities: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        aug = values.pop("augment", {})
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        return cls(**values, augment=AugmentConfig(**aug))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def distils(self) -> bool:
        return self.distill_weight > 0 or self.distill_relation_weight > 0 or self.teacher_views > 0


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def training_set(config: TrainConfig) -> data.ImageSet:
    """Every identity the run trains on (its ArcFace classes), before the closed-set hold-out."""
    if config.dataset == "reproduction":
        everyone = data.training_identities()
    elif config.dataset == "distillation":
        everyone = data.distillation_identities()
    else:
        raise ValueError(f"unknown dataset {config.dataset!r}; expected reproduction or distillation")
    return everyone.evenly_spaced(config.identities)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class Batch:
    x: torch.Tensor  # the network's input
    labels: torch.Tensor
    target: torch.Tensor | None  # the teacher's embedding of exactly this input


class AugmentedBatches:
    """The reproduction's batches: random augmentation on the fly (RGB and its clean crop's heatmap warped
    together); a teacher target, if any, is that of the clean crop or of its mirror."""

    def __init__(self, images, heat, labels, teacher, config: TrainConfig, device):
        self.images, self.labels = images.to(device), labels.to(device)
        self.heat = heat.to(device) if heat is not None else None
        self.teacher = teacher.to(device) if teacher is not None else None
        self.cfg, self.size, self.device = config.augment, config.input_size, device

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, idx: torch.Tensor, g: torch.Generator) -> Batch:
        idx = idx.to(self.device)
        rgb = self.images[idx].float() / 255.0
        h = self.heat[idx].float() if self.heat is not None else None
        flipped = _flips(len(idx), self.cfg, g) if self.teacher is not None else None
        rgb, h = augment(rgb, h, self.size, self.cfg, g)
        target = self.teacher[idx, flipped.to(self.device).long()] if self.teacher is not None else None
        return Batch(model_input(rgb, h, self.size), self.labels[idx], target)


class ViewBatches:
    """Distillation batches: for each image a random one of its stored views (`views.render`), with the
    teacher's target for that view and, for a Heatmap model, its source's map of that view."""

    def __init__(self, images, paths, labels, targets, coarse_maps, config: TrainConfig, device):
        self.images, self.paths, self.labels = images, paths, labels.to(device)
        self.targets = targets.to(device)
        self.coarse = coarse_maps.to(device) if coarse_maps is not None else None
        self.cfg, self.size, self.device = config.augment, config.input_size, device

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, idx: torch.Tensor, g: torch.Generator) -> Batch:
        from .views import render

        idx = idx.cpu()
        views = torch.randint(self.targets.shape[1], (len(idx),), generator=g)
        rgb = render(self.images[idx], [self.paths[i] for i in idx.tolist()], views, self.cfg)
        rgb = rgb.to(self.device).float() / 255.0
        idx, views = idx.to(self.device), views.to(self.device)
        h = upsample_map(self.coarse[idx, views], rgb.shape[-2:]) if self.coarse is not None else None
        return Batch(model_input(rgb, h, self.size), self.labels[idx], self.targets[idx, views])


def view_heatmaps(
    images: torch.Tensor,
    paths: list[str],
    n_views: int,
    source_path: str | os.PathLike,
    target_name: str,
    config: TrainConfig,
    cache_dir: Path,
    log=print,
) -> torch.Tensor:
    """The heatmap source's coarse Grad-CAM++ maps of every view of every image, (N, V, 1, h, w) float16,
    computed once per source model file and view set (a few numbers per view, so all fit in memory)."""
    from .views import render, views_id

    digest = sha256_file(source_path)[:16] + "-" + views_id(config.augment)
    names = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    path = cache_dir / f"views-{digest}-{target_name}-{config.input_size}-{n_views}-{names}.npy"
    if path.exists():
        return torch.from_numpy(np.load(path))
    model, head, _ = load_model(source_path)
    cam = GradCAMPlusPlus(model, make_target(target_name, head))
    out = []
    for v in range(n_views):
        log(f"heatmaps of view {v} of {len(images)} images from {source_path}")
        for start in range(0, len(images), 256):
            part = slice(start, start + 256)
            rgb = render(images[part], paths[part], torch.full((len(images[part]),), v), config.augment)
            coarse, _ = cam.coarse(model_input(rgb.float() / 255.0, size=config.input_size))
            out.append(coarse.half())
    maps = torch.cat(out).view(n_views, len(images), *out[0].shape[1:]).transpose(0, 1).contiguous()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, maps.numpy())
    os.replace(tmp, path)
    return maps


def _teacher_targets(config: TrainConfig, out_dir: Path, images, paths, log) -> torch.Tensor:
    """(N, V, 128) teacher targets: V views, or the crop and its mirror (V = 2) for augmented batches."""
    from .teacher import cached_embeddings, view_targets

    cache = config.distill_cache or out_dir.parent / ".teacher-cache"
    if config.teacher_views:
        targets = view_targets(paths, config.teacher_views, cache, config.augment, log=log)
    else:
        targets = cached_embeddings(images, cache, mirrors=True, log=log)
    if config.distill_center:
        targets = F.normalize(targets, dim=-1)
        targets = targets - targets.mean(dim=(0, 1))
    return targets


@dataclass
class Prepared:
    """What an epoch needs: the batch source, the held-out check's inputs, the model file's config."""

    batches: AugmentedBatches | ViewBatches
    classes: list[str]
    held: tuple[torch.Tensor, torch.Tensor | None, data.ImageSet] | None
    heat_info: dict | None


def prepare_data(config: TrainConfig, out_dir: Path, cache_dir: Path, device, log=print) -> Prepared:
    everyone = training_set(config)
    train_set, held_set = data.holdout_split(everyone, config.holdout_fraction, config.holdout_seed)
    images = data.load_images(train_set.paths)
    labels = train_set.label_tensor()
    heat = held_heat = heat_info = None
    if config.in_channels == 4:
        if not config.heatmap_source:
            raise ValueError("a Heatmap model (in_channels=4) needs heatmap_source")
        source = Path(config.heatmap_source)
        heat_info = {
            "source": os.path.relpath(source.resolve(), out_dir.resolve()),
            "sha256": sha256_file(source),
            "target": config.heatmap_target,
        }
    targets = _teacher_targets(config, out_dir, images, train_set.paths, log) if config.distils else None
    if config.teacher_views:
        if heat_info and config.heatmap_target == "true_class":
            raise ValueError("view distillation uses label-free heatmaps only")
        coarse = None
        if heat_info:
            coarse = view_heatmaps(
                images,
                train_set.paths,
                config.teacher_views,
                config.heatmap_source,
                config.heatmap_target,
                config,
                cache_dir,
                log,
            )
        batches = ViewBatches(images, train_set.paths, labels, targets, coarse, config, device)
    else:
        if heat_info:
            heat = cached_heatmaps(
                images,
                config.heatmap_source,
                config.heatmap_target,
                config.input_size,
                cache_dir,
                labels,
                config.allow_label_heatmaps,
            )
        batches = AugmentedBatches(images, heat, labels, targets, config, device)
    held = None
    if len(held_set):
        held_images = data.load_images(held_set.paths)
        if heat_info:
            target = eval_target({"heatmap": heat_info})
            held_heat = cached_heatmaps(
                held_images, config.heatmap_source, target, config.input_size, cache_dir
            )
        held = (held_images, held_heat, held_set)
    return Prepared(batches, everyone.classes, held, heat_info)


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    until_epoch: int | None = None,
    log=print,
) -> Path:
    """Train (or resume) the run in `out_dir`; stop after `until_epoch` if given. Returns model.pt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out_dir.parent / ".heatmap-cache"
    config_path = out_dir / "config.json"
    if config_path.exists() and json.loads(config_path.read_text()) != config.to_dict():
        raise ValueError(f"{out_dir} holds a run with another configuration; use a new folder")
    config_path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    device = _device(config.device)
    prepared = prepare_data(config, out_dir, cache_dir, device, log)
    trainer = Trainer(config, prepared, device)
    monitor = None
    if config.monitor_identities:
        from .evaluate import Monitor

        monitor = Monitor(config.monitor_identities, config.heatmap_source, cache_dir)
    state_path = out_dir / "state.pt"
    start_epoch = trainer.restore(state_path) if state_path.exists() else 0
    if start_epoch:
        log(f"resuming {out_dir} after epoch {start_epoch}")
    model_config = _model_config(config, prepared)
    last = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
    for epoch in range(start_epoch, last):
        entry = {"epoch": epoch + 1, **trainer.epoch(epoch)}
        if prepared.held is not None:
            entry["heldout_accuracy"], entry["heldout_f1"] = _closed_set(
                trainer.model, trainer.head, config.input_size, *prepared.held, device
            )
        if monitor is not None:
            entry["monitor_top1"] = monitor(trainer.model)
        done = {**model_config, "epochs_done": epoch + 1}
        save_model(out_dir / "model.pt", trainer.model, trainer.head, done)
        trainer.checkpoint(state_path, epoch + 1, out_dir)
        with open(out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        log(json.dumps(entry))
    return out_dir / "model.pt"


def _model_config(config: TrainConfig, prepared: Prepared) -> dict:
    return {
        "arch": config.arch,
        "in_channels": config.in_channels,
        "embedding_dim": config.embedding_dim,
        "dropout": config.dropout,
        "input_size": config.input_size,
        "num_classes": len(prepared.classes),
        "classes": prepared.classes,
        "scale": config.scale,
        "margin": config.margin,
        "easy_margin": config.easy_margin,
        "holdout_fraction": config.holdout_fraction,
        "holdout_seed": config.holdout_seed,
        "heatmap": prepared.heat_info,
        "train_config": config.to_dict(),
    }


class Trainer:
    """Model, heads, optimiser, schedule and the random generator of one run: one epoch at a time."""

    def __init__(self, config: TrainConfig, prepared: Prepared, device: torch.device):
        from .teacher import TEACHER_DIM

        self.config, self.batches, self.device = config, prepared.batches, device
        torch.manual_seed(config.seed)
        self.model = build_model(config.arch, config.in_channels, config.embedding_dim, config.dropout)
        self.head = ArcFace(
            config.embedding_dim, len(prepared.classes), config.scale, config.margin, config.easy_margin
        )
        if config.init_from:
            _init_from(self.model, self.head, config.init_from, prepared.classes)
        self.model.to(device, memory_format=torch.channels_last)
        self.head.to(device)
        self.projection = None
        if config.distils and config.distill_projection:
            # training only: maps the student's embedding into the teacher's space; saved beside the model
            # (projection.pt), never inside the model file that evaluation and serving load
            self.projection = torch.nn.Linear(config.embedding_dim, TEACHER_DIM, bias=False)
            seed = Path(config.init_from).with_name("projection.pt") if config.init_from else None
            if seed and seed.exists():
                self.projection.load_state_dict(torch.load(seed, map_location="cpu"))
            self.projection.to(device)
        elif config.distils and config.embedding_dim != TEACHER_DIM:
            raise ValueError(f"with no projection the embedding is the teacher's: dim {TEACHER_DIM}")
        params = [*self.model.parameters(), *self.head.parameters()]
        if self.projection is not None:
            params += list(self.projection.parameters())
        self.opt = _optimizer(config, params)
        self.steps_per_epoch = max(1, len(self.batches) // config.batch_size)
        if config.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_steps_per_epoch)
        total = self.steps_per_epoch * config.epochs
        warmup = max(1, round(config.warmup_epochs * self.steps_per_epoch))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: _lr_factor(s, total, warmup))
        self.margin_steps = config.margin_warmup_epochs * self.steps_per_epoch
        self.g = torch.Generator().manual_seed(config.seed)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def epoch(self, epoch: int) -> dict:
        """Train one epoch; returns its log fields."""
        config = self.config
        self.model.train()
        self.head.train()
        started = time.perf_counter()
        order = torch.randperm(len(self.batches), generator=self.g).to(self.device)
        losses, parts = [], []
        for i in range(self.steps_per_epoch):
            batch = self.batches(order[i * config.batch_size : (i + 1) * config.batch_size], self.g)
            step = epoch * self.steps_per_epoch + i
            margin = config.margin * min(1.0, step / self.margin_steps) if self.margin_steps else None
            with self.autocast:
                emb = self.model(batch.x).float()
            loss = F.cross_entropy(self.head(emb, batch.labels, margin), batch.labels)
            if batch.target is not None:
                cos_loss, rel_loss = distill_losses(emb, self.projection, batch.target)
                parts.append([loss.item(), cos_loss.item(), rel_loss.item()])
                loss = (
                    config.arcface_weight * loss
                    + config.distill_weight * cos_loss
                    + config.distill_relation_weight * rel_loss
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - started
        entry = {
            "loss": float(np.mean(losses)),
            "lr": self.sched.get_last_lr()[0],
            "train_seconds": round(seconds, 2),
            "images_per_s": round(self.steps_per_epoch * config.batch_size / seconds, 1),
            "device": str(self.device),
            "threads": torch.get_num_threads(),
        }
        if parts:
            arc, cos, rel = np.mean(parts, axis=0).tolist()
            entry.update(arcface_loss=arc, distill_cosine_loss=cos, distill_relation_loss=rel)
        return entry

    def checkpoint(self, path: Path, epochs_done: int, out_dir: Path) -> None:
        _atomic_torch_save(
            {
                "model": self.model.state_dict(),
                "head": self.head.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "generator": self.g.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epochs_done,
                **({"projection": self.projection.state_dict()} if self.projection is not None else {}),
            },
            path,
        )
        if self.projection is not None:
            _atomic_torch_save(self.projection.state_dict(), out_dir / "projection.pt")

    def restore(self, path: Path) -> int:
        """Load a checkpoint; returns the number of epochs it had done."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.g.set_state(state["generator"])
        if self.projection is not None:
            self.projection.load_state_dict(state["projection"])
        torch.set_rng_state(state["torch_rng"])
        return state["epoch"]


def _optimizer(config: TrainConfig, params: list) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def _flips(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Which of the next batch's images `augment` will mirror: its first draw is `geometry`, so replaying
    that draw on a copy of the generator tells, without changing the augmentation (rotation stays within
    +-90 degrees, so the sign of the map's x scale is the flip)."""
    replay = torch.Generator().manual_seed(0)
    replay.set_state(g.get_state())
    return geometry(n, cfg, replay)[:, 0, 0] < 0


def distill_losses(
    emb: torch.Tensor, projection: torch.nn.Module | None, teacher: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - cosine(student, teacher) averaged over the batch, where the student is the embedding or its
    projection; the mean squared difference of the batch's off-diagonal cosine-similarity matrices:
    student embedding vs teacher)."""
    student = projection(emb) if projection is not None else emb
    cos_loss = 1.0 - F.cosine_similarity(student, teacher, dim=1).mean()
    s, t = F.normalize(emb, dim=1), F.normalize(teacher, dim=1)
    off = ~torch.eye(len(emb), dtype=torch.bool, device=emb.device)
    rel_loss = ((s @ s.T - t @ t.T)[off] ** 2).mean()
    return cos_loss, rel_loss


def _init_from(model, head: ArcFace, path: str, classes: list[str]) -> None:
    """Start from another model file; a 3-channel model is widened to seed a 4-channel one."""
    seed_model, seed_head, seed_config = load_model(path)
    if seed_model.in_channels == 3 and model.in_channels == 4:
        widen_stem(seed_model)
    model.load_state_dict(seed_model.state_dict())
    if seed_config["classes"] == classes:
        head.load_state_dict(seed_head.state_dict())


def _closed_set(model, head, size, images, heatmaps, image_set, device) -> tuple[float, float]:
    """Held-out accuracy and macro F1 of the model being trained (original condition)."""
    model.eval()
    head.eval()

    def predict(rgb: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        x = model_input(rgb.to(device).float() / 255.0, None if h is None else h.to(device), size)
        with torch.no_grad():
            return head(model(x).float()).argmax(dim=1).cpu()

    pred = in_batches(predict, images, heatmaps).numpy()
    y = np.asarray(image_set.labels)
    return accuracy(y, pred), macro_f1(y, pred)
