"""A real Milvus for tests and benchmarks: milvus-lite's gRPC server (`python -m milvus_lite server`, the
pymilvus API on a loopback port) in a process of its own, so that several ai-server processes share it as
they would share Milvus Standalone. milvus-lite is a development dependency (requirements-dev.lock), never
in a service image; `require_milvus_lite` skips without it (fails under CI=true)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .ci import require_module
from .processes import free_port, stop_group

# milvus-lite's gRPC server keeps the default ping policy: pymilvus's 10 s idle pings get a GOAWAY
QUIET_KEEPALIVE = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}


def require_milvus_lite() -> None:
    require_module("milvus_lite", "milvus-lite (requirements-dev.lock) is needed to run Milvus here")
    require_module("pymilvus", "pymilvus (requirements-dev.lock) is needed to talk to Milvus")


class MilvusLite:
    """`python -m milvus_lite server` on a free port with its data in `data_dir`; `uri` is what
    AI_SERVER_MILVUS_URI takes. `start` waits until a pymilvus client gets an answer."""

    def __init__(self, data_dir: str | os.PathLike, log: Path | None = None, ready_s: float = 120):
        self.data_dir, self.ready_s = Path(data_dir), ready_s
        self.log = Path(log) if log else self.data_dir.with_name(self.data_dir.name + ".log")
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "MilvusLite":
        command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.time() + self.ready_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite exited with {self.process.returncode}: {self._tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise TimeoutError(
                f"milvus-lite did not listen on {self.port} in {self.ready_s} s: {self._tail()}"
            )
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri, timeout=self.ready_s, grpc_options=QUIET_KEEPALIVE)
        client.list_collections()  # answers: ready
        client.close()

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""

    def stop(self, grace_s: float = 10) -> None:
        stop_group(self.process, grace_s)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "MilvusLite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
