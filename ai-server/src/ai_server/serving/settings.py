"""The ai-server's configuration: environment variables with embedded defaults, read in one place.

| variable | default | meaning |
|---|---|---|
| AI_SERVER_HOST | 127.0.0.1 | address to bind (0.0.0.0 in a container) |
| AI_SERVER_PORT | 5000 | port |
| AI_SERVER_DATA_DIR | data/ai-server | gallery: SQLite, aligned crops, thumbnails |
| AI_SERVER_WEIGHTS_DIR | model-weights of the checkout | the manifest and weights |
| AI_SERVER_MODEL | the manifest's default | model to serve |
| AI_SERVER_VECTOR | embedding | or heatmap_vector (the paper's 16,384-d map) |
| AI_SERVER_MAX_IMAGE_BYTES | 10485760 | upload size limit (413 above) |
| AI_SERVER_MAX_PIXELS | 40000000 | decoded size limit (413 above) |
| AI_SERVER_MAX_K | 50 | largest k a match may ask for |
| AI_SERVER_WORKERS | 2 | gunicorn worker processes |
| AI_SERVER_THREADS | 4 | threads per worker (concurrent requests are batched) |
| AI_SERVER_TORCH_THREADS | cores / workers | torch and onnxruntime threads per worker |
| AI_SERVER_MAX_BATCH | 8 | faces per batched pass |
| AI_SERVER_BATCH_WAIT_MS | 2 | how long a request waits for others to batch with |
| AI_SERVER_FLIP_TTA | 1 | embed the face and its mirror (as calibration was measured) |
| AI_SERVER_INDEX | auto | flat, hnsw, or auto (hnsw from AI_SERVER_HNSW_THRESHOLD faces) |
| AI_SERVER_HNSW_THRESHOLD | 50000 | gallery size where auto switches to HNSW |
| AI_SERVER_LOG_LEVEL | info | debug, info, warning, error |
"""

import os
from dataclasses import dataclass, fields
from pathlib import Path

from ..core.weights import default_weights_dir


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("data/ai-server")
    weights_dir: Path = default_weights_dir()
    model: str | None = None
    vector: str = "embedding"
    max_image_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_k: int = 50
    workers: int = 2
    threads: int = 4
    torch_threads: int = 0  # 0: cores / workers
    max_batch: int = 8
    batch_wait_ms: float = 2.0
    flip_tta: bool = True
    index: str = "auto"
    hnsw_threshold: int = 50_000
    log_level: str = "info"

    @classmethod
    def from_env(cls, env=os.environ, **overrides) -> "Settings":
        values = {}
        for f in fields(cls):
            raw = env.get(f"AI_SERVER_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(f.default) if f.default is not None else str
            if kind is bool:
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif issubclass(kind, Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = kind(raw)
        settings = cls(**{**values, **overrides})
        if settings.torch_threads <= 0:
            settings = cls(**{**settings.__dict__, "torch_threads": max(1, _cores() // settings.workers)})
        return settings
