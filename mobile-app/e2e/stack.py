"""The real system on loopback for the app's browser test: ai-server (shipped weights) + gateway serving the
web build, a search key and an admin key, and a gallery enrolled from ../shared/data validation identities."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from ai_server.research.data import sample_photo

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("FACE_DATA_DIR", REPO.parent / "shared" / "data"))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(path: Path, size: int = 300, face: int = 168) -> bytes:
    """An aligned crop scaled and pasted on a larger canvas, so the detector has a face to find."""
    return sample_photo(path, size, face, quality=92)


def validation_people(count: int) -> dict[str, list[Path]]:
    """The first `count` CelebA validation identities with at least 3 photos, photos sorted by name."""
    ids = (DATA / "splits" / "celeba_val_ids.txt").read_text().split()
    people: dict[str, list[Path]] = {}
    for identity in ids:
        photos = sorted((DATA / "faces112" / "celeba" / identity).glob("*.jpg"))
        if len(photos) >= 3:
            people[identity] = photos
        if len(people) == count:
            break
    return people


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited; its log: {self.log}\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still loading
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout} s; its log: {self.log}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()


class Stack:
    """ai-server + gateway in `workdir`; `url` serves both the API and the web app (same origin)."""

    def __init__(self, workdir: Path, web_dir: Path):
        self.workdir = workdir
        self.ai_url = f"http://127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.processes: list[Process] = []
        gateway_env = {
            "GATEWAY_PORT": self.url.rsplit(":", 1)[1],
            "GATEWAY_AI_SERVER_URL": self.ai_url,
            "GATEWAY_DATA_DIR": str(workdir / "gateway"),
            "GATEWAY_WEB_DIR": str(web_dir),
            "GATEWAY_LOG_LEVEL": "warning",
        }
        self.gateway_env = gateway_env
        try:
            ai = Process(
                "ai-server",
                [str(BIN / "ai-server"), "serve"],
                {
                    "AI_SERVER_DATA_DIR": str(workdir / "ai-server"),
                    "AI_SERVER_PORT": self.ai_url.rsplit(":", 1)[1],
                    "AI_SERVER_WORKERS": "1",
                    "AI_SERVER_THREADS": "4",
                    "AI_SERVER_TORCH_THREADS": "1",
                    "AI_SERVER_LOG_LEVEL": "warning",
                },
                workdir / "ai-server.log",
            )
            self.processes.append(ai)
            self.admin_key = self._key("admin")
            self.search_key = self._key("search")
            gateway_log = workdir / "gateway.log"
            gateway = Process("gateway", [str(BIN / "gateway"), "serve"], gateway_env, gateway_log)
            self.processes.append(gateway)
            ai.wait_ready(self.ai_url + "/readyz", 240)
            gateway.wait_ready(self.url + "/readyz", 60)
        except BaseException:
            self.stop()
            raise

    def _key(self, role: str) -> str:
        path = self.workdir / f"{role}.key"
        command = ["keys", "create", "--role", role, "--name", f"e2e {role}", "--file", str(path)]
        subprocess.run(
            [str(BIN / "gateway"), *command],
            env={**os.environ, **self.gateway_env},
            check=True,
            capture_output=True,
        )
        return path.read_text().strip()

    def enrol(self, name: str, photos: list[bytes], metadata: str | None = None) -> dict:
        files = [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        fields = {"name": name, **({"metadata": metadata} if metadata else {})}
        response = requests.post(
            self.url + "/v1/persons",
            data=fields,
            files=files,
            headers={"X-API-Key": self.admin_key},
            timeout=120,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
