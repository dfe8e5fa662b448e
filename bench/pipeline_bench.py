"""Per-request inference: our pipeline vs the straightforward baseline the paper describes, same photos.

Both paths start from the same uploaded JPEG bytes and use the same face detector and aligner (that stage
is identical by construction and timed apart); they differ in what the paper's method costs:

- baseline: Pillow decode, then per image pytorch-grad-cam's GradCAMPlusPlus on the Base (source) model
  (target: the embedding's norm) and an eager torch forward of the Heatmap model on RGB+H;
- ours: `ai_server.serving.pipeline.engine.Engine` as served, minus flip TTA (the server runs the face and
  its mirror in one batch, which the calibration needs; left out so both do the same work): checked decode,
  our batched Grad-CAM++ whose forward also yields the source embedding, one forward of the Heatmap model;
- ours + ONNX Runtime: the same heatmap (torch, exact), the Heatmap model's forward in ONNX Runtime,
  its embeddings checked against torch (cosine >= 0.9999).

All run in this process on 2 threads, alternating image by image, so machine load hits all alike; the
figures are medians over rounds. Usage: python bench/pipeline_bench.py [--photos 24] [--rounds 3]
"""

import argparse
import io
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus
from testkit import sample_photo

from ai_server.core.models import model_input
from ai_server.research import data
from ai_server.serving.pipeline.engine import Engine
from ai_server.serving.pipeline.faces import align


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


class Baseline:
    def __init__(self, engine: Engine):
        rec = engine.recognizer
        self.engine, self.source, self.model, self.size = engine, rec.cam.model, rec.model, rec.input_size
        self.cam = ReferenceGradCAMPlusPlus(model=self.source, target_layers=[self.source.trunk[-1]])

    def aligned(self, jpeg: bytes) -> np.ndarray:
        rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        return align(rgb, self.engine.detector.detect(rgb)[0].landmarks)

    def vectors(self, faces: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        rgb = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255.0
        x = model_input(rgb, size=self.size)
        maps = self.cam(input_tensor=x, targets=[EmbeddingNorm()] * len(faces))
        with torch.no_grad():
            embedding = self.model(model_input(rgb, torch.from_numpy(maps)[:, None], self.size))
        return F.normalize(embedding, dim=1), maps


class OnnxEmbed:
    """The Heatmap model's forward exported to ONNX (dynamic batch) and run by ONNX Runtime."""

    def __init__(self, engine: Engine, threads: int):
        rec = engine.recognizer
        self.rec = rec
        path = Path(tempfile.mkdtemp()) / "heatmap_model.onnx"
        example = torch.zeros(1, 4, rec.input_size, rec.input_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(rec.model, example, path, dynamo=False, input_names=["x"],
                              output_names=["embedding"], dynamic_axes={"x": {0: "batch"}})  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def inputs(self, faces: list[np.ndarray]) -> torch.Tensor:
        rgb = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255.0
        heat, _ = self.rec.cam(model_input(rgb, size=self.rec.input_size))  # our Grad-CAM++, in torch
        return model_input(rgb, heat, self.rec.input_size)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"x": x.contiguous().numpy()})[0]
        return F.normalize(torch.from_numpy(out), dim=1)

    def vectors(self, faces: list[np.ndarray]) -> torch.Tensor:
        return self.embed(self.inputs(faces))


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def summary(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "per_s": 1e3 / ms.mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = Engine(threads=args.threads, flip=False)
    base, onnx = Baseline(engine), OnnxEmbed(engine, args.threads)
    jpegs = photos(args.photos)

    def ours_one(jpeg):
        return engine.vectors_many([engine.photo(jpeg, 10 << 20, 40_000_000).aligned])

    def base_one(jpeg):
        return base.vectors([base.aligned(jpeg)])

    def onnx_one(jpeg):
        return onnx.vectors([engine.photo(jpeg, 10 << 20, 40_000_000).aligned])

    # equality first: the same maps and embeddings, whichever path made them
    faces = [engine.photo(j, 10 << 20, 40_000_000).aligned for j in jpegs]
    rgb = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255.0
    ours_out = engine.recognizer.run(rgb)
    base_emb, base_maps = base.vectors(faces)
    x = onnx.inputs(faces)
    with torch.no_grad():
        torch_emb = F.normalize(engine.recognizer.model(x), dim=1)
    checks = {
        "heatmap_max_abs_diff": float((ours_out.heatmap[:, 0] - torch.from_numpy(base_maps)).abs().max()),
        "embedding_min_cosine_ours_vs_baseline": float(
            (F.normalize(ours_out.embedding, dim=1) * base_emb).sum(1).min()
        ),
        "embedding_min_cosine_onnx_vs_torch": float((onnx.embed(x) * torch_emb).sum(1).min()),
    }
    assert checks["embedding_min_cosine_onnx_vs_torch"] >= 0.9999, checks

    paths = {
        "baseline": base_one,
        "ours": ours_one,
        "ours + ONNX Runtime": onnx_one,
    }
    for fn in paths.values():  # warm-up
        fn(jpegs[0])
    rounds = {name: [] for name in paths}
    batched = {name: [] for name in ("baseline", "ours", "ours + ONNX Runtime")}
    embed_stage = {"torch": [], "onnx": []}
    for _ in range(args.rounds):
        per = {name: [] for name in paths}
        for jpeg in jpegs:
            for name, fn in paths.items():
                per[name].append(timed(fn, jpeg)[0])
        for name in paths:
            rounds[name].append(summary(per[name]))
        # batched: every photo decoded, detected and aligned, then one pass for all of them
        t, _ = timed(lambda: base.vectors([base.aligned(j) for j in jpegs]))
        batched["baseline"].append(t / len(jpegs))
        t, _ = timed(
            lambda: engine.vectors_many([engine.photo(j, 10 << 20, 40_000_000).aligned for j in jpegs])
        )
        batched["ours"].append(t / len(jpegs))
        t, _ = timed(lambda: onnx.vectors([engine.photo(j, 10 << 20, 40_000_000).aligned for j in jpegs]))
        batched["ours + ONNX Runtime"].append(t / len(jpegs))
        one = x[:1]
        for _ in range(10):
            with torch.no_grad():
                embed_stage["torch"].append(timed(engine.recognizer.model, one)[0])
            embed_stage["onnx"].append(timed(onnx.embed, one)[0])

    def med(name, key):
        return statistics.median(r[key] for r in rounds[name])

    result = {
        "photos": len(jpegs),
        "rounds": args.rounds,
        "threads": args.threads,
        "model": engine.model_name,
        "checks": checks,
        "batch1": {name: {k: med(name, k) for k in ("p50", "p95", "per_s")} for name in paths},
        "batched_ms_per_image": {name: 1e3 * statistics.median(v) for name, v in batched.items()},
        "embed_forward_ms": {name: 1e3 * statistics.median(v) for name, v in embed_stage.items()},
    }
    b1, bt = result["batch1"], result["batched_ms_per_image"]
    print(
        f"### Per-request inference ({engine.model_name}, {args.threads} threads, "
        f"{len(jpegs)} photos 300x300, medians of {args.rounds} rounds)\n"
    )
    print("| path | batch 1 p50 ms | p95 ms | images/s | batched (all photos) ms/image | images/s |")
    print("|---|---|---|---|---|---|")
    for name in paths:
        row = b1[name]
        batch = f"{bt[name]:.1f} | {1e3 / bt[name]:.1f}" if name in bt else "- | -"
        print(f"| {name} | {row['p50']:.1f} | {row['p95']:.1f} | {row['per_s']:.1f} | {batch} |")
    print(
        f"\nBatch 1, p50: baseline / ours = **{b1['baseline']['p50'] / b1['ours']['p50']:.2f}x**; "
        f"baseline / ours + ONNX Runtime = "
        f"**{b1['baseline']['p50'] / b1['ours + ONNX Runtime']['p50']:.2f}x**. "
        f"Batched: baseline / ours = **{bt['baseline'] / bt['ours']:.2f}x**."
    )
    e = result["embed_forward_ms"]
    print(
        f"\nHeatmap model forward alone, one face: torch eager {e['torch']:.2f} ms, ONNX Runtime "
        f"{e['onnx']:.2f} ms ({e['torch'] / e['onnx']:.2f}x). "
        f"Checks: heatmap max |ours - pytorch-grad-cam| = "
        f"{checks['heatmap_max_abs_diff']:.1e}; embedding cosine ours vs baseline >= "
        f"{checks['embedding_min_cosine_ours_vs_baseline']:.6f}; ONNX Runtime vs torch >= "
        f"{checks['embedding_min_cosine_onnx_vs_torch']:.6f}."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
