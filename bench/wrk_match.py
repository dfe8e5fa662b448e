"""End to end under load: wrk against the gateway's /v1/match with a 10,000-face gallery, 1 to 64 connections.

Starts a private ai-server (its defaults: 2 workers, each on every core) on a gallery of 10,000
real faces (2 aligned crops each of 5,000 celeba_ext identities, enrolled once by `ai-server enrol` and kept
under .cache/bench, per model version), and a gateway in front with its defaults except the result cache
(off, so every request reaches the ai-server) and the per-key rate limit (out of the way). wrk posts 32
different photos (other photos of enrolled persons) round-robin (Lua: bench/wrk_match.lua) and counts every
status with its error code. Each run starts once the gateway has nothing left waiting from the one before.
Then the same at 1 and 8 connections straight at the ai-server (with its shared secret: the gateway's
overhead under load), and one run at 128 connections, beyond the gateway's 8 in flight + 64 waiting, where
the only extra answers allowed are clean 503s.
Usage: python bench/wrk_match.py [--seconds 10] [--json out.json]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from testkit import BIN, AiServer, Gateway, data_dir, sample_photo

from ai_server.core.weights import default_weights_dir, load_manifest

DATA = data_dir()
GALLERY_PERSONS, FACES_EACH = 5000, 2

HERE = Path(__file__).resolve().parent
BOUNDARY = "wrkbench7f3a"
READY = {"ready_s": 240, "interval": 0.3}  # how long the benchmarks wait for a service, and how often


def people(n: int = GALLERY_PERSONS) -> list[Path]:
    """The first `n` celeba_ext identities with at least FACES_EACH + 1 crops: enrolled, then queried."""
    root = DATA / "faces112" / "celeba_ext"
    found = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if len(list(person.glob("*.jpg"))) > FACES_EACH:
            found.append(person)
        if len(found) == n:
            break
    return found


def gallery(cache: Path, env: dict) -> Path:
    """The 10,000-face gallery for the served model's version, enrolled once (`ai-server enrol`)."""
    manifest = load_manifest(default_weights_dir(), verify=False)
    version = manifest["models"][manifest["default"]]["sha256"][:12]
    folder = cache / f"gallery-{GALLERY_PERSONS}x{FACES_EACH}-{version}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    ids = cache / "gallery-ids.txt"
    ids.parent.mkdir(parents=True, exist_ok=True)
    ids.write_text("\n".join(p.name for p in people()) + "\n")
    enrol = [BIN / "ai-server", "enrol", DATA / "faces112" / "celeba_ext", "--aligned", "--per-person",
             str(FACES_EACH), "--people", ids]  # fmt: skip
    subprocess.run(
        enrol, env={**os.environ, **env, "AI_SERVER_DATA_DIR": str(folder)}, check=True, capture_output=True
    )
    (folder / ".complete").touch()
    return folder


def queries(n: int) -> list[bytes]:
    """`n` photos (JPEG), each a crop of an enrolled person that was not enrolled."""
    return [sample_photo(sorted(p.glob("*.jpg"))[FACES_EACH]) for p in people()[:: GALLERY_PERSONS // n][:n]]


def multipart(jpeg: bytes) -> bytes:
    """A /v1/match body for the gateway: k=5 and the photo, with BOUNDARY."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="k"\r\n\r\n5\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def bodies(folder: Path, n: int) -> None:
    """The multipart bodies of `queries(n)`, as body1.bin..bodyN.bin for wrk."""
    for i, jpeg in enumerate(queries(n), start=1):
        (folder / f"body{i}.bin").write_bytes(multipart(jpeg))


def services(tmp: Path, **gateway_settings) -> tuple[AiServer, Gateway]:
    """A private ai-server (its defaults) on a copy of the 10,000-face gallery, and a gateway in front of it
    with `gateway_settings` and its rate limit and daily quota out of the way (one key makes every
    request); neither started yet. Both log to tmp/services.log."""
    log = tmp / "services.log"
    ai = AiServer(tmp / "gallery", log=log, **READY)
    shutil.copytree(gallery(HERE.parent / ".cache" / "bench", ai.env), tmp / "gallery")
    settings = {"rate_per_minute": 10000000, "rate_burst": 1000000, "quota_searches_per_day": 10000000}
    settings.update(gateway_settings)
    return ai, Gateway(tmp / "gateway", ai.url, log=log, ready_path="/readyz", **READY, **settings)


def wrk(url: str, connections: int, seconds: int, folder: Path, n: int, key: str, secret: str = "") -> dict:
    """One wrk run; `key` is the gateway API key, `secret` the ai-server's (direct runs)."""
    command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "30s", "-s", str(HERE / "wrk_match.lua"), url, "--", str(folder), str(n), key,
               BOUNDARY, secret]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {"connections": connections, "statuses": {}}
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["status"]:
            result["statuses"][parts[1]] = result["statuses"].get(parts[1], 0) + int(parts[2])
        elif parts[:1] == ["stat"]:
            result[parts[1]] = float(parts[2])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["non_2xx"] = sum(v for k, v in result["statuses"].items() if not k.startswith("2"))
    result["server_errors"] = sum(v for k, v in result["statuses"].items() if k.startswith("5"))
    return result


def drained(base: str, seconds: float = 60) -> None:
    """Wait until the gateway has no request left waiting: requests of a finished run whose clients left
    are still served (aiohttp does not cancel them), and would take queue places from the next run."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        text = requests.get(base + "/metrics", timeout=10).text
        if re.search(r"^gateway_waiting_requests 0\.0$", text, re.M):
            break
        time.sleep(0.5)
    time.sleep(2)  # the last calls in flight finish


def row(target: str, r: dict) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    errors = int(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"])
    return (
        f"| {target} | {r['connections']} | {r['rps']:.1f} | {r['p50_us'] / 1e3:.0f} "
        f"| {r['p90_us'] / 1e3:.0f} | {r['p99_us'] / 1e3:.0f} | {r['max_us'] / 1e3:.0f} | {r['non_2xx']} "
        f"| {errors} | {statuses} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--overload", type=int, default=128)
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: make wrk (apt-get install wrk)")
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="wrk-bench-"))
    (tmp / "bodies").mkdir()
    bodies(tmp / "bodies", args.photos)
    ai, gw = services(tmp, cache_entries=0)
    key = gw.new_key("search")
    gw_port = gw.port
    processes = [ai, gw]
    try:
        for service in processes:
            service.start()
        gateway, direct = f"{gw.url}/v1/match", f"{ai.url}/v1/match"
        wrk(gateway, 2, 3, tmp / "bodies", args.photos, key)  # warm-up
        runs = []
        for c in args.connections:
            drained(f"http://127.0.0.1:{gw_port}")
            runs.append(("gateway", wrk(gateway, c, args.seconds, tmp / "bodies", args.photos, key)))
            if c <= 8:
                drained(f"http://127.0.0.1:{gw_port}")
                direct_run = wrk(direct, c, args.seconds, tmp / "bodies", args.photos, key, ai.secret)
                runs.append(("ai-server direct", direct_run))
        if args.overload:
            drained(f"http://127.0.0.1:{gw_port}")
            runs.append(
                (
                    "gateway (overload)",
                    wrk(gateway, args.overload, args.seconds, tmp / "bodies", args.photos, key),
                )
            )
    finally:
        for service in processes:
            service.stop()
    faces = f"{GALLERY_PERSONS * FACES_EACH:,} faces of {GALLERY_PERSONS:,} persons"
    print(f"### wrk against /v1/match ({args.seconds} s per run, {args.photos} different photos, gallery of "
          f"{faces}, result cache off)\n")  # fmt: skip
    columns = "target|connections|req/s|p50 ms|p90 ms|p99 ms|max ms|non-2xx|socket errors, timeouts|statuses"
    print(f"| {' | '.join(columns.split('|'))} |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for target, r in runs:
        print(row(target, r))
    print(f"\nLoad average {load:.1f} before, {os.getloadavg()[0]:.1f} after.")
    if args.json:
        Path(args.json).write_text(json.dumps([{"target": t, **r} for t, r in runs], indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
