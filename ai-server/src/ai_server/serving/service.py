"""The loaded service of one process: engine and gallery, loaded in a background thread at start.

Loading takes seconds (weights checked against their sha256, models warmed up, FAISS built from SQLite, or
Milvus brought up to date with PostgreSQL), so the HTTP server answers at once and /readyz says 503 until
everything is there: no request ever pays for loading. A failure (wrong weights, a gallery enrolled with
another model) is kept as the reason /readyz gives, and the process stays up to say so.
"""

import logging
import threading
import time

import numpy as np

from .errors import Code, ServiceError
from .gallery import Gallery, backends
from .pipeline.engine import Engine
from .pipeline.faces import ALIGNED_SIZE
from .settings import Settings
from .workers import WorkerReadiness

log = logging.getLogger("ai_server")


class Service:
    """Engine + gallery of this process; `loaded` is set once loading has finished, well or not."""

    def __init__(self, settings: Settings, readiness: WorkerReadiness | None = None):
        self.settings = settings
        self.readiness = readiness or WorkerReadiness(None, 1)
        self.engine: Engine | None = None
        self.gallery: Gallery | None = None
        self.error: str | None = None
        self.loaded = threading.Event()
        threading.Thread(target=self._load, daemon=True, name="loader").start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            engine, gallery = open_service(self.settings)
            engine.vectors(np.zeros((ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8), explain=True)  # warm up
            if removed := gallery.remove_orphans():  # left by a crash mid-enrolment or mid-deletion
                log.info("removed orphan files", extra={"files": removed})
            self.engine, self.gallery = engine, gallery
            self.readiness.mark_ready()
            log.info("ready", extra={"model": engine.model_name, "seconds": time.perf_counter() - started})
        except Exception as err:  # reported by /readyz, and the server stays up to say so
            self.error = err.message if isinstance(err, ServiceError) else f"{type(err).__name__}: {err}"
            log.exception("loading failed")
        finally:
            self.loaded.set()

    def require(self) -> tuple[Engine, Gallery]:
        """Engine and gallery, or a `not_ready` refusal that says why (still loading, or what failed)."""
        if self.engine is None or self.gallery is None:
            raise ServiceError(Code.NOT_READY, self.error or "models and gallery are still loading")
        return self.engine, self.gallery


def open_service(settings: Settings, verify: bool = True) -> tuple[Engine, Gallery]:
    """Engine and gallery as `settings` describe them; the command line opens them the same way.
    `verify=False` skips the gallery's model guard (re-embedding, statistics)."""
    engine = Engine.from_settings(settings)
    gallery = Gallery(backends.from_settings(settings), engine.dims, verify=verify)
    return engine, gallery
