"""The ai-server's footprint before (TORCH_SERVING: the last commit that served with eager torch and `.pt`
weights) and after (this checkout: ONNX Runtime, no torch), in the same run: resident memory of each
gunicorn worker after warm-up and 30 matches, the cold start (`ai-server serve` until /readyz is 200: every
worker loaded), and an estimate of the serving image's Python packages (the installed size of everything
requirements.txt pulls in).

"Before" runs that commit's code (`git archive`, which changes nothing in the checkout) from a temporary
folder with its own weights, in this venv (`--before REV` for another). The image estimate counts the
installed files of each distribution (its RECORD) and its dependencies; torch is counted as the CPU wheel
the image installed (the venv holds a CUDA build), read from /opt/wheels when it is there. The base image
(python:3.11-slim) comes on top of both. Usage: python bench/footprint.py [--matches 30] [--json out.json]
"""

import argparse
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

import requests
from testkit import BIN, sample_photo

from ai_server.research import data

ROOT = Path(__file__).resolve().parents[1]
CPU_TORCH_WHEELS = Path("/opt/wheels")


TORCH_SERVING = "69e566e"  # the commit before 38edb9d moved serving to ONNX Runtime (its default model then)


def committed_tree(folder: Path, revision: str) -> Path:
    """ai-server/src, ai-server/requirements.txt and model-weights/ of `revision`, under `folder`."""
    paths = ["ai-server/src", "ai-server/requirements.txt", "model-weights"]
    archive = subprocess.run(["git", "archive", revision, *paths], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def workers(master: int) -> list[int]:
    """The gunicorn workers: the master's child processes."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def serve(name: str, env: dict, matches: int, tmp: Path) -> dict:
    """Start a server, time its cold start, warm it with `matches` matches, read its workers' RSS."""
    port = 5600 + (hash(name) % 200)
    secret = "footprint-" + "s" * 40
    env = {**os.environ, **env, "AI_SERVER_PORT": str(port), "AI_SERVER_DATA_DIR": str(tmp / name),
           "AI_SERVER_SECRET": secret, "AI_SERVER_LOG_LEVEL": "warning"}  # fmt: skip
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {secret}"}
    started = time.perf_counter()
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - the server's output, closed after it stops
    process = subprocess.Popen(
        [BIN / "ai-server", "serve"], env=env, stdout=log, stderr=log, start_new_session=True
    )
    try:
        while True:
            try:
                if requests.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.perf_counter() - started > 600:
                raise RuntimeError(f"{name} did not start: {(tmp / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        cold = time.perf_counter() - started
        photo = sample_photo(data.validation_identities().paths[0])
        for _ in range(matches):
            response = requests.post(
                url + "/v1/match", files={"image": ("q.jpg", photo)}, headers=headers, timeout=60
            )
            response.raise_for_status()
        rss = [rss_mib(p) for p in workers(process.pid)]
        return {"cold_start_s": cold, "worker_rss_mib": rss, "master_rss_mib": rss_mib(process.pid)}
    finally:
        os.killpg(process.pid, 15)
        process.wait(60)
        log.close()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these pins install (their Requires-Dist, without extras or other platforms)."""
    todo, seen = [re.split(r"[=<>!~;\[ ]", r, maxsplit=1)[0] for r in requirements], set()
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" in req or ("platform_system" in req and "Linux" not in req):
                continue
            todo.append(re.split(r"[=<>!~;\[ (]", req, maxsplit=1)[0])
    return seen


def _installed_mib(name: str) -> float:
    dist = metadata.distribution(name)
    return (
        sum(
            (
                Path(dist.locate_file(f)).stat().st_size
                for f in dist.files or []
                if Path(dist.locate_file(f)).is_file()
            ),
            0,
        )
        / 2**20
    )


def _cpu_torch_mib() -> float | None:
    wheels = sorted(CPU_TORCH_WHEELS.glob("torch-*+cpu-*.whl"))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return sum(i.file_size for i in wheel.infolist()) / 2**20


def image_packages(requirements: Path) -> dict:
    """Installed MiB of the closure of a requirements file; torch as its CPU wheel, no CUDA packages."""
    pins = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    closure = _closure([p for p in pins if p])
    sizes = {}
    for name in sorted(closure):
        if name.startswith(("nvidia-", "triton", "cuda-")):
            continue  # the CUDA build's; the image's CPU torch has none
        sizes[name] = _installed_mib(name)
    if "torch" in sizes and (cpu := _cpu_torch_mib()) is not None:
        sizes["torch"] = cpu
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return {"total_mib": sum(sizes.values()), "largest": top, "packages": len(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--matches", type=int, default=30)
    parser.add_argument("--json")
    parser.add_argument("--before", default=TORCH_SERVING)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="footprint-"))
    old = committed_tree(tmp / "before", args.before)
    before_env = {
        "PYTHONPATH": str(old / "ai-server/src"),
        "AI_SERVER_WEIGHTS_DIR": str(old / "model-weights"),
    }
    runs = {
        "before (torch)": serve("before", before_env, args.matches, tmp),
        "after (ONNX Runtime)": serve("after", {}, args.matches, tmp),
    }
    images = {
        "before (torch)": image_packages(old / "ai-server/requirements.txt"),
        "after (ONNX Runtime)": image_packages(ROOT / "ai-server/requirements.txt"),
    }
    print("| server | cold start s | RSS per worker MiB | gunicorn master MiB | image: Python packages MiB "
          "| largest |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        im = images[name]
        largest = ", ".join(f"{n} {s:.0f}" for n, s in im["largest"][:3])
        rss = " / ".join(f"{m:.0f}" for m in r["worker_rss_mib"])
        print(f"| {name} | {r['cold_start_s']:.1f} | {rss} | {r['master_rss_mib']:.0f} | "
              f"{im['total_mib']:.0f} ({im['packages']} distributions) | {largest} |")  # fmt: skip
    print(
        "\nWorkers: the defaults (2; threads: cores / workers before, every core after), an empty gallery, "
        f"after {args.matches} matches. Load average {load:.1f} before, {os.getloadavg()[0]:.1f} after."
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"servers": runs, "images": images}, indent=1))


if __name__ == "__main__":
    main()
