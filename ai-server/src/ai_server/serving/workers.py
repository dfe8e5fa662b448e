"""Readiness of the whole server, not of one worker: every gunicorn worker records that it has loaded.

A load balancer, compose's healthcheck or a test that waits for /readyz and then sends requests must not
have its next request land on a worker that is still loading (that was a 503 on a busy machine). So each
worker, once its models and gallery are loaded, writes `<runtime dir>/ready/<pid>`; the gunicorn master
removes the file when that worker exits, and /readyz, in whichever worker answers, counts the files of
live processes against the number of workers configured. The runtime dir is a fresh folder made by the
gunicorn config at start (`AI_SERVER_RUNTIME_DIR`). Without it (a Flask app made in-process, as the
tests do) the server is one process and its own readiness is the server's.
"""

import os
from pathlib import Path

RUNTIME_DIR_VARIABLE = "AI_SERVER_RUNTIME_DIR"


class WorkerReadiness:
    """How many of `expected` worker processes have loaded, from marker files in `folder`."""

    def __init__(self, folder: Path | None, expected: int):
        self.folder = None if folder is None else Path(folder) / "ready"
        self.expected = expected if folder is not None else 1
        self._ready_here = False

    @classmethod
    def from_environment(cls, expected: int) -> "WorkerReadiness":
        runtime = os.environ.get(RUNTIME_DIR_VARIABLE)
        return cls(Path(runtime) if runtime else None, expected)

    def mark_ready(self) -> None:
        """This worker has loaded; written atomically, so a reader never sees half a marker."""
        self._ready_here = True
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / str(os.getpid())
        temporary = marker.with_suffix(".tmp")
        temporary.write_text("ready\n")
        os.replace(temporary, marker)

    def forget(self, pid: int) -> None:
        """A worker exited (called by the gunicorn master): its replacement must load before readiness."""
        if self.folder is not None:
            (self.folder / str(pid)).unlink(missing_ok=True)

    def count(self) -> int:
        """Loaded workers that are still alive (a marker left by a killed worker does not count)."""
        if self.folder is None:
            return int(self._ready_here)
        if not self.folder.is_dir():
            return 0
        return sum(1 for m in self.folder.iterdir() if m.name.isdigit() and _alive(int(m.name)))

    def all_ready(self) -> bool:
        return self.count() >= self.expected


def _alive(pid: int) -> bool:
    """Running, and not a zombie: a killed worker is one until the master reaps it."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or someone else's process since
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux): trust the signal check
        return True
    return state not in ("Z", "X")
