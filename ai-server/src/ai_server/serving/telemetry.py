"""Prometheus metrics and JSON logs for the service.

Under gunicorn every worker writes its metrics to `PROMETHEUS_MULTIPROC_DIR` (set by the gunicorn
config) and `/metrics` sums them, so the numbers cover the whole server, not one worker.
"""

import json
import logging
import os
import sys
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("ai_requests_total", "HTTP requests", ["endpoint", "status"])
REQUEST_SECONDS = Histogram("ai_request_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS)
STAGE_SECONDS = Histogram("ai_stage_seconds", "Time per pipeline stage", ["stage"], buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("ai_batch_size", "Faces per batched model pass", buckets=(1, 2, 4, 8, 16, 32))
GALLERY_PERSONS = Gauge("ai_gallery_persons", "Enrolled persons", multiprocess_mode="mostrecent")
GALLERY_FACES = Gauge("ai_gallery_faces", "Enrolled faces", multiprocess_mode="mostrecent")


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and any `extra` fields (request id, timings)."""

    STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self.STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info") -> logging.Logger:
    logger = logging.getLogger("ai_server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger
