"""Prometheus metrics and JSON logs (one object per line: ts, level, logger, msg, then any `extra` fields
such as request_id, and exc for a traceback) for the gateway."""

import logging
import sys
import time

from prometheus_client import Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "status"])
REQUEST_SECONDS = Histogram("gateway_request_seconds", "Request latency", ["route"], buckets=BUCKETS)
UPSTREAM_SECONDS = Histogram("gateway_upstream_seconds", "ai-server call latency", ["call"], buckets=BUCKETS)
CACHE = Counter("gateway_cache_total", "Match result cache lookups", ["result"])
CIRCUIT_OPEN = Gauge("gateway_circuit_open", "1 while the circuit to the ai-server is open")
WAITING = Gauge("gateway_waiting_requests", "Requests waiting for an ai-server slot")
BODY_BYTES = Gauge("gateway_body_bytes", "Bytes of request bodies held within the body budget")
UNLOGGED = Counter(
    "gateway_unlogged_refusals_total", "Refusals not written to the failure log (per-address limit)"
)


class LogFormatter(JsonFormatter):
    """python-json-logger with the field names and UTC millisecond timestamps both services log with."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self) -> None:
        names = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}
        super().__init__("{asctime}{levelname}{name}{message}", style="{", rename_fields=names)

    def process_log_record(self, log_data: dict) -> dict:
        log_data["level"] = log_data["level"].lower()
        return log_data


def configure_logging(level: str = "info") -> logging.Logger:
    logger = logging.getLogger("gateway")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LogFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger
