"""Prometheus metrics and JSON logs (one object per line, with the request id) for the gateway."""

import json
import logging
import sys
import time

from prometheus_client import Counter, Gauge, Histogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["route", "status"])
REQUEST_SECONDS = Histogram("gateway_request_seconds", "Request latency", ["route"], buckets=BUCKETS)
UPSTREAM_SECONDS = Histogram("gateway_upstream_seconds", "ai-server call latency", ["call"], buckets=BUCKETS)
CACHE = Counter("gateway_cache_total", "Match result cache lookups", ["result"])
CIRCUIT_OPEN = Gauge("gateway_circuit_open", "1 while the circuit to the ai-server is open")
WAITING = Gauge("gateway_waiting_requests", "Requests waiting for an ai-server slot")


class JsonFormatter(logging.Formatter):
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
    logger = logging.getLogger("gateway")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger
