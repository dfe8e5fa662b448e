"""/v1/match latency per stage, served as deployed (`ai-server serve`, gunicorn defaults for this machine).

Runs the default model and the paper's ShuffleNetV2 Heatmap model side by side in the same run: for each,
a fresh gallery of the CelebA validation identities (one photo each), then sequential queries with other
photos of them. Prints p50/p95 of each stage the server reports (decode, detect, align, heatmap, embed,
search, render: the explain overlay), the server's total and the client's round trip. Then the overlay
alone against the way it was made before (`overlay_before`), on the same real faces and maps.
Usage: python bench/match_latency.py [--queries N]
"""

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import requests
from PIL import Image
from testkit import AiServer, sample_photo

from ai_server.core.weights import default_weights_dir, load_manifest
from ai_server.research import data
from ai_server.serving.pipeline.render import OVERLAY_SIZE, overlay_png
from ai_server.serving.pipeline.runtime import ServedModel, face_vectors

STAGES = ["decode", "detect", "align", "heatmap", "embed", "search", "render", "total"]


def overlay_before(aligned: np.ndarray, heatmap: np.ndarray) -> bytes:
    """The overlay as the server made it until 2026-12-06: cv2.applyColorMap on every call, Pillow's
    default PNG level (6)."""
    colours = cv2.applyColorMap(np.uint8(255 * np.clip(heatmap, 0, 1)), cv2.COLORMAP_JET)[:, :, ::-1]
    blend = (0.55 * aligned + 0.45 * colours).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(blend).resize((OVERLAY_SIZE, OVERLAY_SIZE), Image.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def overlays(faces: int = 30, rounds: int = 5) -> str:
    """Before vs now on the served model's maps of `faces` real aligned faces, alternating face by face."""
    manifest = load_manifest(default_weights_dir())
    model = ServedModel(default_weights_dir(), manifest, manifest["default"])
    paths = data.validation_identities().paths[::7][:faces]
    aligned = np.stack([np.asarray(Image.open(data.data_dir() / p).convert("RGB")) for p in paths])
    maps = face_vectors(model, aligned).explanation
    ms: dict[str, list[float]] = {"before": [], "now": []}
    size: dict[str, list[int]] = {"before": [], "now": []}
    same = True
    for _ in range(rounds):
        for face, heatmap in zip(aligned, maps, strict=True):
            out = {}
            for name, fn in (("before", overlay_before), ("now", overlay_png)):
                started = time.perf_counter()
                out[name] = fn(face, heatmap)
                ms[name].append(1000 * (time.perf_counter() - started))
                size[name].append(len(out[name]))
            pixels = [np.asarray(Image.open(io.BytesIO(b))) for b in out.values()]
            same = same and np.array_equal(*pixels)
    lines = [f"explain overlay (render stage), {faces} real faces and their maps, {rounds} rounds, same run:"]
    labels = {"before": "cv2.applyColorMap per call, PNG level 6", "now": "lookup table, PNG level 1"}
    for name, label in labels.items():
        kib = np.median(size[name]) / 1024
        lines.append(f"  {name:<7} {label:<42} p50 {np.median(ms[name]):6.2f} ms   PNG {kib:5.1f} KiB")
    lines.append(f"  pixels identical: {'yes' if same else 'NO'}")
    return "\n".join(lines)


def _serve(model: str, data_dir: str) -> AiServer:
    """`ai-server serve` with `model`, its output here, once /readyz is 200 (at most 5 minutes)."""
    server = AiServer(data_dir, ready_s=300, interval=0.5, model=model, log_level="warning")
    server.start()
    return server


def measure(model: str, queries: int, explain: bool) -> dict[str, list[float]]:
    people = data.validation_identities()
    by_person: dict[int, list[str]] = {}
    for path, label in zip(people.paths, people.labels, strict=True):
        by_person.setdefault(label, []).append(path)
    with tempfile.TemporaryDirectory() as folder:
        server = _serve(model, folder)
        url = server.url
        try:
            for label, paths in by_person.items():
                files = {"image": ("0.jpg", sample_photo(paths[0]), "image/jpeg")}
                server.call("POST", "/v1/persons", data={"name": str(label)}, files=files)
            probes = [p for paths in by_person.values() for p in paths[1:3]][:queries]
            photos = [sample_photo(p) for p in probes]
            for photo in photos[:5]:  # warm both workers
                server.call("POST", "/v1/match", files={"image": ("q.jpg", photo)})
            times: dict[str, list[float]] = {s: [] for s in [*STAGES, "round trip"]}
            session = requests.Session()
            for photo in photos:
                started = time.perf_counter()
                response = session.post(
                    url + "/v1/match",
                    data={"explain": str(explain).lower()},
                    files={"image": ("q.jpg", photo)},
                    headers=server.headers,
                )
                times["round trip"].append(1000 * (time.perf_counter() - started))
                timings = response.json().get("timings_ms", {})
                for stage in STAGES:
                    if stage in timings:
                        times[stage].append(timings[stage])
            return times
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    manifest = json.loads((default_weights_dir() / "manifest.json").read_text())
    models = list(dict.fromkeys([manifest["default"], "shufflenet-heatmap"]))
    results = {}
    for model in models:
        for explain in (False, True):
            results[f"{model}{' explain' if explain else ''}"] = measure(model, args.queries, explain)
    print(f"/v1/match, {args.queries} sequential queries, gallery of 62 persons, {os.cpu_count()} cores")
    print("ms p50 / p95".ljust(16) + "".join(name.rjust(38) for name in results))
    for stage in [*STAGES, "round trip"]:
        cells = []
        for times in results.values():
            values = times[stage]
            cells.append(
                f"{np.percentile(values, 50):.1f} / {np.percentile(values, 95):.1f}" if values else "-"
            )
        print(stage.ljust(16) + "".join(c.rjust(38) for c in cells))
    print()
    print(overlays())
    if args.json:
        summary = {
            name: {s: [np.percentile(v, 50), np.percentile(v, 95)] for s, v in t.items() if v}
            for name, t in results.items()
        }
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
