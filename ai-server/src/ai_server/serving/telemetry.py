"""Prometheus metrics and JSON logs for the service.

Under gunicorn every worker writes its metrics to `PROMETHEUS_MULTIPROC_DIR` (set by the gunicorn
config) and `/metrics` sums them, so the numbers cover the whole server, not one worker.

Logs are one JSON object per line (python-json-logger): `ts` (UTC, milliseconds), `level`, `logger`, `msg`,
then every `extra` field the caller gave (request id, method, path, status, ms, ...) and `exc` with the
traceback of a logged exception. Log collectors and the gateway's tests read these names.
"""

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
from pythonjsonlogger.json import JsonFormatter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PIPELINE_STAGES = ("decode", "detect", "align", "heatmap", "embed", "search", "render")

REQUESTS = Counter("ai_requests_total", "HTTP requests", ["endpoint", "status"])
REQUEST_SECONDS = Histogram("ai_request_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS)
STAGE_SECONDS = Histogram("ai_stage_seconds", "Time per pipeline stage", ["stage"], buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("ai_batch_size", "Faces per batched model pass", buckets=(1, 2, 4, 8, 16, 32))
GALLERY_PERSONS = Gauge("ai_gallery_persons", "Enrolled persons", multiprocess_mode="mostrecent")
GALLERY_FACES = Gauge("ai_gallery_faces", "Enrolled faces", multiprocess_mode="mostrecent")


def render() -> tuple[bytes, str]:
    """The metrics page: of every worker when running under gunicorn, else of this process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def observe_stages(seconds: dict[str, float]) -> None:
    for stage in PIPELINE_STAGES:
        if stage in seconds:
            STAGE_SECONDS.labels(stage).observe(seconds[stage])


class LogFormatter(JsonFormatter):
    """python-json-logger with the service's field names, lower-case levels and UTC timestamps."""

    FIELDS = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}

    def __init__(self):
        super().__init__("{asctime}{levelname}{name}{message}", style="{", rename_fields=self.FIELDS)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    def process_log_record(self, log_data: dict) -> dict:
        log_data["level"] = str(log_data["level"]).lower()
        return log_data


def configure_logging(level: str = "info") -> logging.Logger:
    """The `ai_server` logger writes JSON lines to stderr (gunicorn passes them through)."""
    logger = logging.getLogger("ai_server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LogFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger
