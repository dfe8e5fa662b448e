"""Embedding + heatmap cost per face of served models, side by side in one run (the students' cost target).

Each model file (a Heatmap model finds its Base source beside it) embeds the same aligned validation faces
exactly as the server does (`core.vectors.face_vectors`: flip TTA, the source's Grad-CAM++ map as the 4th
channel), at batch 1 and batch 8; models alternate round by round so that a change in machine load hits
them alike. Writes the medians to a JSON file the report quotes (docs/results/students/cost.json).

    python bench/student_cost.py NAME=model.pt [NAME=model.pt ...] --out docs/results/students/cost.json
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from ai_server.core.recognizer import Recognizer
from ai_server.core.vectors import face_vectors
from ai_server.research import data
from ai_server.research.report.runs import hardware


def _seconds(recognizer: Recognizer, rgb: torch.Tensor) -> float:
    started = time.perf_counter()
    with torch.no_grad():
        face_vectors(recognizer, rgb, flip=True)
    return time.perf_counter() - started


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("models", nargs="+", metavar="NAME=FILE")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faces = data.load_images(data.celeba_ext_validation().paths[:8]).float() / 255.0
    models = {name: Recognizer.load(file) for name, file in (m.split("=", 1) for m in args.models)}
    load_before = os.getloadavg()[0]
    times: dict[str, dict[int, list[float]]] = {name: {1: [], 8: []} for name in models}
    for recognizer in models.values():  # warm-up
        _seconds(recognizer, faces[:1])
        _seconds(recognizer, faces)
    for _ in range(args.rounds):
        for name, recognizer in models.items():
            times[name][1].append(_seconds(recognizer, faces[:1]))
            times[name][8].append(_seconds(recognizer, faces) / len(faces))
    result = {
        "hardware": hardware(),
        "threads": args.threads,
        "rounds": args.rounds,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "models": [
            {
                "model": name,
                "ms_per_face": 1000 * statistics.median(t[1]),
                "ms_per_face_batch8": 1000 * statistics.median(t[8]),
            }
            for name, t in times.items()
        ],
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
