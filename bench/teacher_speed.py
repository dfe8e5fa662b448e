"""Seconds per face of the distillation teacher (dlib's ResNet) under the dlib this interpreter imports.

Run it with each dlib build to compare them in one sitting (`make bench-teacher` runs the PyPI wheel and
the OpenBLAS build back to back): the same crops, one process per thread count, batched descriptors.
"""

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import dlib

    from ai_server.research import data
    from ai_server.research.teacher import Teacher

    paths = data.training_identities().paths[: args.images]
    images = data.load_images(paths)
    teacher = Teacher()
    teacher.embed(images[:4])  # warm-up
    started = time.perf_counter()
    cpu = time.process_time()
    emb = teacher.embed(images, batch_size=args.batch)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "dlib": dlib.__version__,
                "blas": bool(dlib.DLIB_USE_BLAS),
                "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                "images": len(images),
                "wall_s_per_image": round(wall / len(images), 4),
                "cpu_s_per_image": round(cpu / len(images), 4),
                "checksum": float(np.abs(emb).sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
