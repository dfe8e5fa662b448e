"""Enrolment throughput of the command line (`ai-server enrol`), faces per second, two ways in: aligned
112x112 crops (`--aligned`, no detection) and uploaded-style photos (decode, detect, align). Each run is
a fresh process into an empty gallery; the fixed cost (loading the models) is measured by enrolling an
empty folder and taken off, and reported. Then the PNG of each kept crop, as the gallery writes it
(`render.png`) against Pillow's default level it used before, on the same real crops.
Usage: python bench/enrol_throughput.py [--threads 1]
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from testkit import BIN, data_dir, sample_photo

from ai_server.serving.pipeline.render import png

DATA = data_dir()


def enrol(folder: Path, gallery: Path, threads: int, *options) -> tuple[float, dict]:
    env = {**os.environ, "AI_SERVER_DATA_DIR": str(gallery), "AI_SERVER_ONNX_THREADS": str(threads)}
    started = time.perf_counter()
    out = subprocess.run([BIN / "ai-server", "enrol", folder, *options], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return time.perf_counter() - started, json.loads(out.splitlines()[0]) if out.strip() else {}


def crop_pngs(crops: list[Path], rounds: int = 3) -> str:
    """ms and bytes of the crop's PNG: Pillow's default level (before) and `render.png` (now), alternating."""
    faces = [np.asarray(Image.open(p).convert("RGB")) for p in crops]

    def before(rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        return buffer.getvalue()

    ms: dict[str, list[float]] = {"before": [], "now": []}
    size: dict[str, list[int]] = {"before": [], "now": []}
    for _ in range(rounds):
        for face in faces:
            for name, encode in (("before", before), ("now", png)):
                started = time.perf_counter()
                data = encode(face)
                ms[name].append(1000 * (time.perf_counter() - started))
                size[name].append(len(data))
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), face)  # lossless both
    lines = [f"The kept crop's PNG ({len(faces)} real 112x112 crops x {rounds}, same run; pixels identical):"]
    for name, label in (("before", "Pillow's default level (6)"), ("now", "render.png (level 1)")):
        kib = np.median(size[name]) / 1024
        lines.append(f"  {name:<7} {label:<28} p50 {np.median(ms[name]):5.2f} ms   {kib:5.1f} KiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-person", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="enrol-bench-"))
    people = DATA / "splits" / "celeba_val_ids.txt"
    ids = people.read_text().split()
    (tmp / "empty").mkdir()
    photos = tmp / "photos"  # the same faces as uploaded photos: a person per folder
    for identity in ids:
        (photos / identity).mkdir(parents=True)
        for path in sorted((DATA / "faces112" / "celeba" / identity).glob("*.jpg"))[: args.per_person]:
            (photos / identity / path.name).write_bytes(sample_photo(path))
    fixed, _ = enrol(tmp / "empty", tmp / "g0", args.threads)
    aligned_s, aligned = enrol(DATA / "faces112" / "celeba", tmp / "g1", args.threads, "--aligned",
                               "--per-person", str(args.per_person), "--people", people)  # fmt: skip
    photo_s, photo = enrol(photos, tmp / "g2", args.threads)
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, seconds, report in (
        ("aligned crops (--aligned)", aligned_s, aligned),
        ("photos", photo_s, photo),
    ):
        faces = report.get("faces", report.get("faces_added", 0))
        rows.append({"input": name, "faces": faces, "seconds": seconds, "per_s": faces / (seconds - fixed)})
    print(f"### Enrolment with `ai-server enrol` ({args.threads} threads per process, {len(ids)} persons x "
          f"{args.per_person} photos)\n")  # fmt: skip
    print("| input | faces | wall s | faces/s (model loading taken off) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['input']} | {r['faces']} | {r['seconds']:.1f} | {r['per_s']:.1f} |")
    print(f"\nLoading the models (an empty folder): {fixed:.1f} s per process.\n")
    print(crop_pngs([min((DATA / "faces112" / "celeba" / identity).glob("*.jpg")) for identity in ids]))
    if args.json:
        Path(args.json).write_text(json.dumps({"fixed_s": fixed, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
