"""gunicorn settings for `ai-server serve`, from the same environment variables as the app.

Threaded workers (gthread): each worker holds one copy of the models and batches its threads' requests;
torch and onnxruntime threads per worker are cores / workers so workers do not oversubscribe the CPU.
Models load in each worker after the fork (no preload): torch and onnxruntime thread pools do not
survive a fork safely.
"""

import os
import shutil
import tempfile

from ai_server.serving.settings import Settings

_settings = Settings.from_env()

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
wsgi_app = "ai_server.serving.app:create_app()"


def on_starting(server):
    """Metrics from all workers are summed through files in one fresh folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="ai-server-metrics-")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
