"""Grad-CAM++ speed: our batched implementation vs pytorch-grad-cam, same model, images and target.

Both run in this process on the same batch of real aligned faces, alternating, so machine noise hits
both alike; the table gives medians over the repeats and the largest difference between the maps.

    .venv/bin/python bench/cam_bench.py                 # 2 CPU threads, batch 32, all archs, 112 and 224
    .venv/bin/python bench/cam_bench.py --device cuda   # on a GPU machine
"""

import argparse
import platform
import statistics
import subprocess
import time

import numpy as np
import torch
from pytorch_grad_cam import GradCAMPlusPlus as ReferenceGradCAMPlusPlus

from ai_server.core.cam import GradCAMPlusPlus, make_target
from ai_server.core.models import ARCHS, build_model, load_model, model_input
from ai_server.research import data


class EmbeddingNorm:
    def __call__(self, output):
        return output.norm()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench(model, x: torch.Tensor, device: str, repeats: int) -> dict:
    ours = GradCAMPlusPlus(model, make_target("embedding_norm"))
    reference = ReferenceGradCAMPlusPlus(model=model, target_layers=[model.trunk[-1]])
    targets = [EmbeddingNorm()] * len(x)

    def run_ours():
        return ours(x)[0][:, 0].cpu().numpy()

    def run_reference():
        return reference(input_tensor=x, targets=targets)

    diff = float(np.abs(run_ours() - run_reference()).max())  # also the warm-up
    run_ours(), run_reference()
    t_ours, t_ref = [], []
    for _ in range(repeats):
        t_ours.append(_time(run_ours, device))
        t_ref.append(_time(run_reference, device))
    ours_s, ref_s = statistics.median(t_ours), statistics.median(t_ref)
    return {"ours_ms": 1e3 * ours_s, "ref_ms": 1e3 * ref_s, "speedup": ref_s / ours_s, "max_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archs", nargs="*", default=list(ARCHS))
    parser.add_argument("--sizes", nargs="*", type=int, default=[112, 224])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", help="a trained model file instead of randomly initialised archs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    paths = [p for p in data.training_identities().paths if "/celeba/" in p][: args.batch]
    rgb = data.load_images(paths).float().div(255).to(args.device)
    if args.model:
        model, _, config = load_model(args.model, device=args.device)
        models = [(config["arch"], model)]
    else:
        torch.manual_seed(0)
        models = [
            (arch, build_model(arch).to(args.device, memory_format=torch.channels_last).eval())
            for arch in args.archs
        ]

    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print(f"# Grad-CAM++ on the last conv block, batch {args.batch} real faces, target embedding norm")
    print(f"# {device}; {platform.machine()}; torch {torch.__version__}; commit {git.stdout.strip()}")
    print(f"# medians of {args.repeats} alternating repeats\n")
    print("| arch | input | ours ms | ours img/s | pytorch-grad-cam ms | its img/s | speed-up | max diff |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, model in models:
        for size in args.sizes:
            r = bench(model, model_input(rgb, size=size), args.device, args.repeats)
            print(
                f"| {arch} | {size} | {r['ours_ms']:.1f} | {args.batch / r['ours_ms'] * 1e3:.0f} "
                f"| {r['ref_ms']:.1f} | {args.batch / r['ref_ms'] * 1e3:.0f} | {r['speedup']:.1f}x "
                f"| {r['max_diff']:.1e} |"
            )


if __name__ == "__main__":
    main()
