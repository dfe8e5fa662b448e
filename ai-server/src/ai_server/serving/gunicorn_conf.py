"""gunicorn settings for `ai-server serve`, from the same environment variables as the app.

Threaded workers (gthread): each worker holds one copy of the models and batches its threads' requests;
each worker's ONNX Runtime may use every core, without spinning, so a lone request gets them all.
Models load in each worker after the fork (no preload): torch and onnxruntime thread pools do not
survive a fork safely.

At start the master makes one fresh runtime folder for the workers: `metrics/` (Prometheus multiprocess
files, unless PROMETHEUS_MULTIPROC_DIR is given) and `ready/` (a file per loaded worker; /readyz counts
them, see `serving/workers.py`); it is removed when the master exits.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from ai_server.serving.settings import SettingsError, load_settings
from ai_server.serving.workers import RUNTIME_DIR_VARIABLE, WorkerReadiness

try:
    _settings = load_settings()
    _settings.internal_secret()  # serving needs the gateway's shared secret: refuse to start without it
except SettingsError as err:  # a clear line and status 2, not gunicorn's "Failed to read config" traceback
    print(f"ai-server: {err}", file=sys.stderr)
    raise SystemExit(2) from None

os.umask(0o077)  # the gallery (faces, names) and the runtime folder: readable by this user only
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
threads = _settings.threads
worker_class = "gthread"
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app logs every request as JSON
errorlog = "-"
loglevel = _settings.log_level
wsgi_app = "ai_server.serving.http.app:create_app()"


def _readiness() -> WorkerReadiness:
    return WorkerReadiness(Path(os.environ[RUNTIME_DIR_VARIABLE]), _settings.workers)


def on_starting(server):
    """One fresh runtime folder: metrics summed over workers, readiness counted over workers."""
    runtime = tempfile.mkdtemp(prefix="ai-server-run-")
    os.environ[RUNTIME_DIR_VARIABLE] = runtime
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(runtime, "metrics")
    shutil.rmtree(metrics, ignore_errors=True)
    os.makedirs(metrics)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics


def child_exit(server, worker):
    """A worker is gone: its metrics stop counting as live, and /readyz waits for its replacement."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    _readiness().forget(worker.pid)


def on_exit(server):
    shutil.rmtree(os.environ[RUNTIME_DIR_VARIABLE], ignore_errors=True)
