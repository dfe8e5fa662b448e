"""`make run` (scripts/run.py) as a user starts it: both services, the ai-server answering the gateway only
(a shared secret it makes on the first start), and every file it writes (gallery, crops, thumbnails,
databases, stored photos, keys, the secret) readable by this user only."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests
from testkit import REPO, celeba_people, free_port, sample_photo

BIN = Path(sys.executable).parent


def test_make_run_keeps_everything_private_and_the_ai_server_behind_its_secret(tmp_path):
    ai_port, gateway_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_SERVER_", "GATEWAY_"))}
    env |= {
        "DATA_DIR": str(tmp_path / "data"),
        "AI_SERVER_PORT": str(ai_port),
        "GATEWAY_PORT": str(gateway_port),
    }
    env |= {"AI_SERVER_WORKERS": "1", "AI_SERVER_THREADS": "2", "AI_SERVER_LOG_LEVEL": "warning"}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(
            [BIN / "python", REPO / "scripts" / "run.py"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 300
        while "ready:" not in log.read_text(errors="replace"):
            assert run.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        data = tmp_path / "data"
        gateway = f"http://127.0.0.1:{gateway_port}"
        key = (data / "gateway" / "admin.key").read_text().strip()
        face = sample_photo(next(iter(celeba_people("celeba_val").values()))[0])
        files = {"image": ("a.jpg", face, "image/jpeg")}
        enrolled = requests.post(
            gateway + "/v1/persons", data={"name": "Run"}, files=files, headers={"X-API-Key": key}, timeout=60
        )
        assert enrolled.status_code == 201, enrolled.text
        files = {"image": ("q.jpg", face, "image/jpeg")}
        searched = requests.post(gateway + "/v1/match", files=files, headers={"X-API-Key": key}, timeout=60)
        assert searched.status_code == 200, searched.text
        refused = requests.get(f"http://127.0.0.1:{ai_port}/v1/persons", timeout=10)
        assert refused.status_code == 401  # the loopback is no longer enough
        written = [p for p in data.rglob("*")]
        assert len([p for p in written if p.suffix in (".png", ".jpg")]) >= 2  # crops, thumbnails
        assert (data / "secrets" / "ai_server_secret").is_file()
        shared = [
            f"{p.relative_to(data)} {stat.filemode(p.stat().st_mode)}"
            for p in written
            if p.stat().st_mode & 0o077
        ]
        assert shared == [], shared
        assert data.stat().st_mode & 0o077 == 0
    finally:
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(60) == 0, log.read_text()[-3000:]
