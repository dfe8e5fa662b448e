"""Training of Base (RGB) and Heatmap (RGB + Grad-CAM++) models with ArcFace, resumable at every epoch.

A run lives in one folder: `config.json` (what was asked), `state.pt` (everything needed to resume:
weights, optimiser, schedule, random generators), `model.pt` (the model file evaluation and serving load)
and `log.jsonl` (one line per epoch: loss, held-out accuracy and F1, throughput, wall time). Starting a run
whose folder has a `state.pt` continues it, so a run cut off at any moment loses at most one epoch.
"""

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data
from .augment import AugmentConfig, augment, geometry
from .cam import cached_heatmaps
from .metrics import accuracy, macro_f1
from .models import ArcFace, build_model, load_model, model_input, save_model, sha256_file, widen_stem
from .recognizer import eval_target, in_batches


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
    identities: int | None = None  # evenly spaced subset of the training identities (smoke runs)
    max_steps_per_epoch: int | None = None
    holdout_fraction: float = data.HOLDOUT_FRACTION
    holdout_seed: int = data.HOLDOUT_SEED
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"  # auto = cuda when available
    # Distillation from dlib's ResNet (teacher.py); off by default. Loss = arcface_weight * ArcFace
    # + distill_weight * (1 - cos(projection(embedding), teacher)) + distill_relation_weight * mean squared
    # difference of the batch's cosine-similarity matrices (student embedding vs teacher).
    arcface_weight: float = 1.0
    distill_weight: float = 0.0
    distill_relation_weight: float = 0.0
    distill_cache: str | None = None  # teacher embedding cache (default <out>/../.teacher-cache)
    # subtract the mean teacher embedding first: dlib's unit vectors share one direction (mean pairwise cosine
    # 0.84 on our training crops), which an uncentred cosine target mostly teaches
    distill_center: bool = False

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
        return self.distill_weight > 0 or self.distill_relation_weight > 0


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _select_identities(images: data.ImageSet, n: int | None) -> data.ImageSet:
    if n is None:
        return images
    picks = np.unique(np.linspace(0, len(images.classes) - 1, n).round().astype(int))
    return images.in_classes([images.classes[i] for i in picks])


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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

    everyone = _select_identities(data.training_identities(), config.identities)
    train_set, held_set = data.holdout_split(everyone, config.holdout_fraction, config.holdout_seed)
    images = data.load_images(train_set.paths)
    held_images = data.load_images(held_set.paths)
    labels = train_set.label_tensor()

    heat = held_heat = heat_info = None
    if config.in_channels == 4:
        if not config.heatmap_source:
            raise ValueError("a Heatmap model (in_channels=4) needs heatmap_source")
        source = Path(config.heatmap_source)
        heat = cached_heatmaps(
            images,
            source,
            config.heatmap_target,
            config.input_size,
            cache_dir,
            labels,
            config.allow_label_heatmaps,
        )
        heat_info = {
            "source": os.path.relpath(source.resolve(), out_dir.resolve()),
            "sha256": sha256_file(source),
            "target": config.heatmap_target,
        }
        target = eval_target({"heatmap": heat_info})
        held_heat = cached_heatmaps(held_images, source, target, config.input_size, cache_dir)

    torch.manual_seed(config.seed)
    model = build_model(config.arch, config.in_channels, config.embedding_dim, config.dropout)
    head = ArcFace(
        config.embedding_dim, len(everyone.classes), config.scale, config.margin, config.easy_margin
    )
    if config.init_from:
        _init_from(model, head, config.init_from, everyone.classes)
    model.to(device, memory_format=torch.channels_last)
    head.to(device)

    teacher_emb = projection = None
    if config.distils:
        from .teacher import TEACHER_DIM, cached_embeddings

        teacher_cache = config.distill_cache or out_dir.parent / ".teacher-cache"
        teacher_emb = cached_embeddings(images, teacher_cache, mirrors=True, log=log)  # (N, 2, 128)
        if config.distill_center:
            teacher_emb = F.normalize(teacher_emb, dim=-1)
            teacher_emb = teacher_emb - teacher_emb.mean(dim=(0, 1))
        # training only: maps the student's embedding into the teacher's space; saved beside the model
        # (projection.pt), never inside the model file that evaluation and serving load
        projection = torch.nn.Linear(config.embedding_dim, TEACHER_DIM, bias=False)
        if config.init_from and Path(config.init_from).with_name("projection.pt").exists():
            projection.load_state_dict(
                torch.load(Path(config.init_from).with_name("projection.pt"), map_location="cpu")
            )
        projection.to(device)

    params = list(model.parameters()) + list(head.parameters())
    if projection is not None:
        params += list(projection.parameters())
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(
            params, config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
        )
    elif config.optimizer == "adamw":
        opt = torch.optim.AdamW(params, config.lr, weight_decay=config.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    steps_per_epoch = max(1, len(images) // config.batch_size)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total = steps_per_epoch * config.epochs
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warmup))
    margin_steps = config.margin_warmup_epochs * steps_per_epoch
    g = torch.Generator().manual_seed(config.seed)

    model_config = {
        "arch": config.arch,
        "in_channels": config.in_channels,
        "embedding_dim": config.embedding_dim,
        "dropout": config.dropout,
        "input_size": config.input_size,
        "num_classes": len(everyone.classes),
        "classes": everyone.classes,
        "scale": config.scale,
        "margin": config.margin,
        "easy_margin": config.easy_margin,
        "holdout_fraction": config.holdout_fraction,
        "holdout_seed": config.holdout_seed,
        "heatmap": heat_info,
        "train_config": config.to_dict(),
    }

    start_epoch = 0
    state_path = out_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        g.set_state(state["generator"])
        if projection is not None:
            projection.load_state_dict(state["projection"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = state["epoch"]
        log(f"resuming {out_dir} after epoch {start_epoch}")

    last = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
    images, labels = images.to(device), labels.to(device)
    heat = heat.to(device) if heat is not None else None
    teacher_emb = teacher_emb.to(device) if teacher_emb is not None else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for epoch in range(start_epoch, last):
        model.train()
        head.train()
        started = time.perf_counter()
        order = torch.randperm(len(images), generator=g).to(device)
        losses, parts = [], []
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            rgb = images[idx].float() / 255.0
            h = heat[idx].float() if heat is not None else None
            flipped = _flips(len(idx), config.augment, g) if teacher_emb is not None else None
            rgb, h = augment(rgb, h, config.input_size, config.augment, g)
            step = epoch * steps_per_epoch + i
            margin = config.margin * min(1.0, step / margin_steps) if margin_steps else None
            with autocast:
                emb = model(model_input(rgb, h, config.input_size))
            loss = F.cross_entropy(head(emb.float(), labels[idx], margin), labels[idx])
            if teacher_emb is not None:
                target = teacher_emb[idx, flipped.to(device).long()]  # a mirrored crop: the mirror's
                cos_loss, rel_loss = distill_losses(emb.float(), projection, target)
                parts.append([loss.item(), cos_loss.item(), rel_loss.item()])
                loss = (
                    config.arcface_weight * loss
                    + config.distill_weight * cos_loss
                    + config.distill_relation_weight * rel_loss
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - started
        held = _closed_set(model, head, config.input_size, held_images, held_heat, held_set, device)
        entry = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "lr": sched.get_last_lr()[0],
            "heldout_accuracy": held[0],
            "heldout_f1": held[1],
            "train_seconds": round(seconds, 2),
            "images_per_s": round(steps_per_epoch * config.batch_size / seconds, 1),
            "device": str(device),
            "threads": torch.get_num_threads(),
        }
        if parts:
            arc, cos, rel = np.mean(parts, axis=0).tolist()
            entry.update(arcface_loss=arc, distill_cosine_loss=cos, distill_relation_loss=rel)
        save_model(out_dir / "model.pt", model, head, {**model_config, "epochs_done": epoch + 1})
        _atomic_torch_save(
            {
                "model": model.state_dict(),
                "head": head.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "generator": g.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch + 1,
                **({"projection": projection.state_dict()} if projection is not None else {}),
            },
            state_path,
        )
        if projection is not None:
            _atomic_torch_save(projection.state_dict(), out_dir / "projection.pt")
        with open(out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        log(json.dumps(entry))
    return out_dir / "model.pt"


def _flips(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Which of the next batch's images `augment` will mirror: its first draw is `geometry`, so replaying
    that draw on a copy of the generator tells, without changing the augmentation (rotation stays within
    +-90 degrees, so the sign of the map's x scale is the flip)."""
    replay = torch.Generator().manual_seed(0)
    replay.set_state(g.get_state())
    return geometry(n, cfg, replay)[:, 0, 0] < 0


def distill_losses(
    emb: torch.Tensor, projection: torch.nn.Module, teacher: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - cosine(projection(embedding), teacher) averaged over the batch, the mean squared difference
    of the batch's off-diagonal cosine-similarity matrices: student embedding vs teacher)."""
    cos_loss = 1.0 - F.cosine_similarity(projection(emb), teacher, dim=1).mean()
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
