"""The gateway's own cost per /v1/match: the same photos sent to the ai-server directly and through the
gateway (a cache miss, then a cache hit), interleaved so that both see the same machine load.

Starts a private ai-server (1 worker, the shipped weights) and gateway on loopback ports with temporary
data, enrols a few persons from ../shared/data, then for each photo: direct, gateway miss (the photo with
a few bytes appended after the JPEG end marker, so the cache has not seen it and the decoded image is the
same), gateway hit (the same bytes again). Prints the medians of the per-round p50s side by side, and
the median of the per-photo differences (gateway minus the direct call just before it).

    .venv/bin/python bench/gateway_overhead.py [--photos 30] [--rounds 3]
"""

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ai_server.research.data import sample_photo as photo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("FACE_DATA_DIR") or ROOT.parent / "shared" / "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command, env, url, log):
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def timed(session, url, image, headers=None) -> tuple[float, dict]:
    """Wall time of one request (ms), and the gateway's own account of it (timings_ms, when it is one)."""
    started = time.perf_counter()
    response = session.post(
        url, files={"image": ("q.jpg", image)}, data={"k": "5"}, headers=headers, timeout=60
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return 1000 * seconds, response.json()["timings_ms"] if headers else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ids = (DATA / "splits" / "celeba_val_ids.txt").read_text().split()
    paths = [sorted((DATA / "faces112" / "celeba" / i).glob("*.jpg")) for i in ids]
    paths = [p for p in paths if len(p) >= 2]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log", "wb") as log:
        ai_port, gw_port = free_port(), free_port()
        ai_url, gw_url = f"http://127.0.0.1:{ai_port}", f"http://127.0.0.1:{gw_port}"
        ai_env = {
            "AI_SERVER_PORT": str(ai_port),
            "AI_SERVER_DATA_DIR": f"{tmp}/ai",
            "AI_SERVER_WORKERS": "1",
            "AI_SERVER_LOG_LEVEL": "warning",
        }
        gw_env = {
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_AI_SERVER_URL": ai_url,
            "GATEWAY_DATA_DIR": f"{tmp}/gw",
            "GATEWAY_RATE_PER_MINUTE": "1000000",
            "GATEWAY_RATE_BURST": "100000",
            "GATEWAY_LOG_LEVEL": "warning",
        }
        key = subprocess.run(
            [BIN / "gateway", "keys", "create", "--role", "admin"],
            env={**os.environ, **gw_env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        processes = [
            start([BIN / "ai-server", "serve"], ai_env, ai_url + "/readyz", log),
            start([BIN / "gateway", "serve"], gw_env, gw_url + "/readyz", log),
        ]
        try:
            session, headers = requests.Session(), {"X-API-Key": key}
            for i, person in enumerate(paths[:20]):
                files = {"image": ("e.jpg", photo(person[0]))}
                session.post(gw_url + "/v1/persons", data={"name": f"p{i}"}, files=files, headers=headers)
            queries = [photo(p[1]) for p in paths[: args.photos]]
            for image in queries[:3]:  # warm up both paths
                timed(session, ai_url + "/v1/match", image)
            rows = {"ai-server direct": [], "gateway, cache miss": [], "gateway, cache hit": []}
            paired = {"miss": [], "hit": []}  # per photo, minus its direct call right before: load cancels
            inside = {}  # the gateway's stages on a miss
            for _ in range(args.rounds):
                times = {name: [] for name in rows}
                for image in queries:
                    fresh = image + secrets.token_bytes(
                        8
                    )  # after the JPEG end marker: same pixels, new sha256
                    direct, _ = timed(session, ai_url + "/v1/match", image)
                    miss, stages = timed(session, gw_url + "/v1/match", fresh, headers)
                    hit, _ = timed(session, gw_url + "/v1/match", fresh, headers)
                    for name, value in zip(rows, (direct, miss, hit), strict=True):
                        times[name].append(value)
                    paired["miss"].append(miss - direct)
                    paired["hit"].append(hit - direct)
                    for stage, ms in stages.items():
                        inside.setdefault(stage, []).append(ms)
                for name in rows:
                    rows[name].append(statistics.median(times[name]))
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
    p50 = {name: statistics.median(values) for name, values in rows.items()}
    print(f"/v1/match p50 over {args.photos} photos, median of {args.rounds} rounds (ms), same run:")
    for name, value in p50.items():
        per_round = ", ".join(f"{v:.1f}" for v in rows[name])
        print(f"  {name:<22} {value:8.1f}   (rounds: {per_round})")
    miss, hit = statistics.median(paired["miss"]), statistics.median(paired["hit"])
    print(f"  gateway overhead on a miss (median of per-photo differences): {miss:+.1f} ms")
    print(f"  a cache hit vs. calling the ai-server (the same):             {hit:+.1f} ms")
    stages = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in inside.items())
    print(f"  inside the gateway on a miss, p50 (ms): {stages}")


if __name__ == "__main__":
    main()
