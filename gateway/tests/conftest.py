"""Real processes on loopback: one ai-server for the session (the shipped weights; models load once) and
gateways started per module with the configuration each test module needs. Every response a test gets
through `Api` is checked against the OpenAPI file: its status must be documented and its body valid."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import requests
from photos import data_dir

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPEC = json.loads((REPO / "gateway/src/gateway/openapi.json").read_text())


def pytest_sessionstart(session):
    if not (data_dir() / "faces112").is_dir():
        raise pytest.UsageError(f"face data not found at {data_dir()}; set FACE_DATA_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {seconds} s")


class Process:
    """A service in its own process group, its output appended to a log file."""

    def __init__(self, command: list, env: dict, log: Path, ready_url: str, ready_s: float):
        self.command, self.env, self.log, self.ready_url, self.ready_s = command, env, log, ready_url, ready_s
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command, env={**os.environ, **self.env}, stdout=out, stderr=out, start_new_session=True
            )
        wait_until(self.ready_url, self.process, self.ready_s)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class AiServer(Process):
    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "AI_SERVER_DATA_DIR": str(root / "gallery"),
            "AI_SERVER_PORT": str(self.port),
            "AI_SERVER_WORKERS": "1",
            "AI_SERVER_THREADS": "8",
            "AI_SERVER_TORCH_THREADS": "1",
            "AI_SERVER_LOG_LEVEL": "info",
        }
        super().__init__([BIN / "ai-server", "serve"], env, root / "ai-server.log", self.url + "/readyz", 240)

    def match_count(self) -> float:
        """How many /v1/match requests the ai-server has answered (from its own metrics)."""
        total = 0.0
        for line in requests.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("ai_requests_total{") and 'endpoint="/v1/match"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


class Gateway(Process):
    def __init__(self, root: Path, ai_url: str, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "gateway"
        env = {
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_AI_SERVER_URL": ai_url,
            "GATEWAY_DATA_DIR": str(self.data_dir),
            **{f"GATEWAY_{k.upper()}": str(v) for k, v in settings.items()},
        }
        super().__init__([BIN / "gateway", "serve"], env, root / "gateway.log", self.url + "/healthz", 30)

    def new_key(self, role: str) -> str:
        """A key made with the real command line, against the gateway's database."""
        command = [BIN / "gateway", "keys", "create", "--role", role, "--name", f"test {role}"]
        env = {**os.environ, **self.env}
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def ai_server(tmp_path_factory):
    server = AiServer(tmp_path_factory.mktemp("ai-server"))
    server.start()
    yield server
    server.stop()


def spec_path(path: str) -> str:
    """The OpenAPI path template a concrete path belongs to."""
    path = path.split("?")[0]
    if path in SPEC["paths"]:
        return path
    for template in SPEC["paths"]:
        parts, concrete = template.split("/"), path.split("/")
        if len(parts) == len(concrete) and all(
            p == c or (p.startswith("{") and c) for p, c in zip(parts, concrete, strict=True)
        ):
            return template
    raise AssertionError(f"{path} is not in the OpenAPI file")


def check_contract(method: str, path: str, response: requests.Response) -> None:
    operation = SPEC["paths"][spec_path(path)].get(method.lower())
    assert operation, f"{method} {path} is not in the OpenAPI file"
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method} {path} answered {response.status_code}, which is not documented"
    if "$ref" in documented:
        documented = SPEC["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    content = documented.get("content", {})
    media_type = response.headers.get("Content-Type", "").split(";")[0]
    assert media_type in content, (
        f"{method} {path}: {media_type} is not documented for {response.status_code}"
    )
    schema = content[media_type].get("schema")
    if media_type == "application/json" and schema:
        jsonschema.validate(response.json(), {**schema, "components": SPEC["components"]})


class Api:
    """requests with an API key and the contract check on every response."""

    def __init__(self, url: str, key: str | None = None):
        self.url, self.key = url, key

    def __call__(self, method: str, path: str, key: str | None = "default", **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        key = self.key if key == "default" else key
        if key:
            headers["X-API-Key"] = key
        response = requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)
        check_contract(method, path, response)
        return response

    def match(self, image: bytes, key="default", filename: str = "q.jpg", headers=None, **fields):
        files = {"image": (filename, image)}
        return self("POST", "/v1/match", key=key, data=fields, files=files, headers=headers or {})


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]["code"]
