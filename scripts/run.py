"""`make run`: the ai-server (loopback only) and the gateway (the one public port) as local processes.

Starts both, waits until each answers /readyz, prints the URLs and where the local admin API key is,
and stops both cleanly on Ctrl-C (or when either exits). Data lives under data/ (git-ignored):
data/ai-server (the gallery), data/gateway (searches, keys, stored images) and data/secrets (the
ai-server's shared secret, made on the first start). Everything is written readable by this user only
(umask 077): these are faces, names and contact details of real people.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:  # not listening yet, or 503 while models load
        return False


def shared_secret(folder: Path) -> Path:
    """The ai-server's shared secret, made once (owner-only folder and file); its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "ai_server_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
    return path


def main() -> int:
    os.umask(0o077)
    data = Path(os.environ.get("DATA_DIR", ROOT / "data"))
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    ai_port = os.environ.get("AI_SERVER_PORT", "5000")
    secret = shared_secret(data / "secrets")
    env = {
        **os.environ,
        "AI_SERVER_HOST": "127.0.0.1",
        "AI_SERVER_PORT": ai_port,
        "AI_SERVER_DATA_DIR": os.environ.get("AI_SERVER_DATA_DIR", str(data / "ai-server")),
        "AI_SERVER_SECRET_FILE": str(secret),
        "GATEWAY_AI_SERVER_URL": f"http://127.0.0.1:{ai_port}",
        "GATEWAY_AI_SERVER_SECRET_FILE": str(secret),
        "GATEWAY_DATA_DIR": os.environ.get("GATEWAY_DATA_DIR", str(data / "gateway")),
    }
    for name in ("AI_SERVER_SECRET", "GATEWAY_AI_SERVER_SECRET"):  # the file is the one secret
        env.pop(name, None)
    gateway_url = f"http://127.0.0.1:{env.get('GATEWAY_PORT', '8080')}"
    key_file = Path(env["GATEWAY_DATA_DIR"]) / "admin.key"
    # The gateway checks its settings first: a bad GATEWAY_* value is reported (on stderr) and stops here.
    admin_key = subprocess.run([BIN / "gateway", "keys", "ensure-admin", "--file", key_file], env=env)
    if admin_key.returncode != 0:
        return admin_key.returncode
    services = {
        "ai-server": (subprocess.Popen([BIN / "ai-server", "serve"], env=env), f"http://127.0.0.1:{ai_port}"),
        "gateway": (subprocess.Popen([BIN / "gateway", "serve"], env=env), gateway_url),
    }
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        deadline = time.time() + 300
        while not stopping and not all(ready(url + "/readyz") for _, url in services.values()):
            if time.time() > deadline or any(p.poll() is not None for p, _ in services.values()):
                print("a service did not start; see its output above", file=sys.stderr)
                return 1
            time.sleep(0.5)
        if not stopping:
            print(
                f"\nready:\n  API and web app  {gateway_url}/\n  API docs         {gateway_url}/docs\n"
                f"  admin API key    {key_file} (send it as X-API-Key)\n"
                f"  ai-server        http://127.0.0.1:{ai_port} (loopback only; answers the gateway only)\n"
                "Ctrl-C stops both.",
                flush=True,
            )
        while not stopping and all(p.poll() is None for p, _ in services.values()):
            time.sleep(0.5)
        return 0
    finally:
        for process, _ in services.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in services.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
