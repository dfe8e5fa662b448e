"""Real services on loopback ports: a free port, a process in its own process group with its output in a
log file, waited on until a URL answers 200, stopped with SIGTERM (SIGKILL after a grace period).

The ai-server answers only callers with its shared secret: `AiServer` makes one per server (or takes
`secret=`), offers it as `headers` for a test that calls the ai-server itself, and a `Gateway` in front of
a known `AiServer` URL is given that secret without being told."""

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from .paths import BIN


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not Path(log).is_file():
        return ""
    return f"; its log ({log}):\n{Path(log).read_text(errors='replace')[-chars:]}"


def stop_group(process: subprocess.Popen | None, grace_s: float) -> None:
    """SIGTERM to a process started in its own session (and its children), SIGKILL after `grace_s`."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_ready(
    url: str,
    process: subprocess.Popen | None = None,
    seconds: float = 60.0,
    interval: float = 0.2,
    log: Path | None = None,
) -> requests.Response:
    """GET `url` every `interval` s until it answers 200 (that response is returned); RuntimeError as soon
    as `process` has exited, TimeoutError after `seconds` (both with the end of `log`, when given)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return response
        except requests.RequestException:  # not listening yet, or busy loading models
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}{_log_tail(log)}")
        time.sleep(interval)
    raise TimeoutError(f"{url} did not answer 200 within {seconds} s{_log_tail(log)}")


class Service:
    """A command in its own process group (so a stop reaches gunicorn's workers too) with `env` over the
    current environment, its output appended to `log` (None: this process's own), ready when `ready_url`
    answers 200. `start` may be called again after `stop` or a kill: same command, port and data."""

    def __init__(
        self,
        command: list,
        env: dict[str, str],
        ready_url: str,
        ready_s: float,
        log: Path | None = None,
        interval: float = 0.2,
    ):
        self.command, self.env, self.ready_url, self.ready_s = command, env, ready_url, ready_s
        self.log, self.interval = log, interval
        self.process: subprocess.Popen | None = None

    def launch(self) -> None:
        """Start the process without waiting (see `wait_ready`): to start several side by side."""
        env = {**os.environ, **self.env}
        if self.log is None:
            self.process = subprocess.Popen(self.command, env=env, start_new_session=True)
            return
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command, env=env, stdout=out, stderr=out, start_new_session=True
            )

    def wait_ready(self, seconds: float | None = None):
        """Wait until `ready_url` answers 200 (`ready_s` by default); that response."""
        seconds = self.ready_s if seconds is None else seconds
        return wait_ready(self.ready_url, self.process, seconds, self.interval, self.log)

    def start(self):
        """Launch, then wait until ready; what `wait_ready` returns."""
        self.launch()
        return self.wait_ready()

    def stop(self, grace_s: float = 30) -> None:
        stop_group(self.process, grace_s)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _variables(prefix: str, settings: dict) -> dict[str, str]:
    return {f"{prefix}{name.upper()}": str(value) for name, value in settings.items()}


_SECRETS: dict[str, str] = {}  # ai-server URL -> its shared secret, for the gateways put in front of it


class AiServer(Service):
    """`ai-server serve` on a free port with its gallery in `data_dir`, ready at /readyz (every worker
    loaded); `settings` become AI_SERVER_* variables (workers=1 -> AI_SERVER_WORKERS=1). Its shared secret
    is `secret` (a new one unless given), sent by `headers` and `call`."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        log: Path | None = None,
        ready_s: float = 240,
        interval: float = 0.2,
        secret: str | None = None,
        **settings,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secret or secrets.token_urlsafe(32)
        self.headers = {"Authorization": f"Bearer {self.secret}"}
        _SECRETS[self.url] = self.secret
        env = {
            "AI_SERVER_DATA_DIR": str(data_dir),
            "AI_SERVER_PORT": str(self.port),
            "AI_SERVER_SECRET": self.secret,
            **_variables("AI_SERVER_", settings),
        }
        super().__init__([BIN / "ai-server", "serve"], env, self.url + "/readyz", ready_s, log, interval)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """A request to the ai-server itself, with its secret (and `headers=` added to it)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def match_count(self) -> float:
        """How many /v1/match requests the ai-server has answered (from its own metrics)."""
        total = 0.0
        for line in self.call("GET", "/metrics").text.splitlines():
            if line.startswith("ai_requests_total{") and 'endpoint="/v1/match"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


class Gateway(Service):
    """`gateway serve` on a free port in front of `ai_url`, its data in `data_dir`, ready at `ready_path`;
    `settings` become GATEWAY_* variables (rate_burst=10 -> GATEWAY_RATE_BURST=10); in front of an
    `AiServer` of this process it has that server's secret unless `ai_server_secret` is given."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        ai_url: str,
        log: Path | None = None,
        ready_path: str = "/healthz",
        ready_s: float = 30,
        interval: float = 0.2,
        **settings,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir)
        known = {"GATEWAY_AI_SERVER_SECRET": _SECRETS[ai_url]} if ai_url in _SECRETS else {}
        env = {
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_AI_SERVER_URL": ai_url,
            "GATEWAY_DATA_DIR": str(self.data_dir),
            **known,
            **_variables("GATEWAY_", settings),
        }
        super().__init__([BIN / "gateway", "serve"], env, self.url + ready_path, ready_s, log, interval)

    def new_key(self, role: str, name: str | None = None, file: Path | None = None) -> str:
        """An API key made with the real command line against this gateway's database (running or not);
        with `file`, the command writes it there (and it is read back)."""
        command = [BIN / "gateway", "keys", "create", "--role", role]
        command += ["--name", name] if name else []
        command += ["--file", str(file)] if file else []
        done = subprocess.run(
            command, env={**os.environ, **self.env}, check=True, capture_output=True, text=True
        )
        return Path(file).read_text().strip() if file else done.stdout.strip()
