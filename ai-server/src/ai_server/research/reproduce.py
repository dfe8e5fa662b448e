"""The paper's protocol as data, run by a small scheduler that can be stopped and restarted at any time.

For each backbone and seed: a Base model (RGB), a Heatmap model seeded from it (RGB + its Grad-CAM++ maps,
4-channel stem widened from the Base weights), and a Heatmap model from scratch with the same maps (so
that the heatmap's effect is not confused with longer training). On the served backbone, also a Base model
trained on from its Base for the same budget as the seeded Heatmap model ("continued"): the fair control
for the seeded model's extra epochs. Each run is `ai-server train` in its own
process with one thread: on two cores two such jobs train faster in total than one job with two threads.
Finished runs are skipped; unfinished ones resume after their last epoch; then each is evaluated.
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.paths import in_repo

RECIPES = in_repo("ai-server", "configs", "repro")
SEEDS = {"shufflenet_v2_x1_0": (0, 1, 2), "mobilenet_v3_large": (0,), "efficientnet_b0": (0,)}
CONTINUED = {"shufflenet_v2_x1_0"}  # backbones that get the equal-budget Base control
SHORT = {
    "shufflenet_v2_x1_0": "shufflenet",
    "mobilenet_v3_large": "mobilenet",
    "efficientnet_b0": "efficientnet",
}


@dataclass
class Job:
    name: str
    kind: str  # train | evaluate
    args: list[str]
    needs: list[str] = field(default_factory=list)  # jobs that must have finished first


def protocol(runs: Path, overrides: dict, evaluate_args: list[str]) -> list[Job]:
    """All jobs in priority order: the served ShuffleNetV2 chain first, then the other backbones."""
    jobs: list[Job] = []
    order = [(arch, seed) for arch, seeds in SEEDS.items() for seed in seeds]
    order.sort(key=lambda a_s: (a_s[1], list(SEEDS).index(a_s[0])))  # seed 0 of everything first
    for arch, seed in order:
        recipe = {**json.loads((RECIPES / f"{arch}.json").read_text()), "seed": seed, **overrides}
        base = f"{SHORT[arch]}-base-s{seed}"
        base_model = str(runs / base / "model.pt")
        variants = {
            base: ({}, []),
            f"{SHORT[arch]}-heatmap-s{seed}": (
                {"in_channels": 4, "heatmap_source": base_model, "init_from": base_model},
                [base],
            ),
            f"{SHORT[arch]}-scratch-s{seed}": ({"in_channels": 4, "heatmap_source": base_model}, [base]),
        }
        if arch in CONTINUED:
            variants[f"{SHORT[arch]}-continued-s{seed}"] = ({"init_from": base_model}, [base])
        for name, (extra, needs) in variants.items():
            config_path = runs / "configs" / f"{name}.json"
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(json.dumps({**recipe, **extra}, indent=2) + "\n")
            out = runs / name
            jobs.append(Job(name, "train", ["train", str(config_path), "--out", str(out)], needs))
            jobs.append(
                Job(
                    f"{name}:evaluate",
                    "evaluate",
                    ["evaluate", str(out / "model.pt"), "--out", str(out / "metrics.json"), *evaluate_args],
                    [name, *needs],
                )
            )
    return jobs


def _finished(job: Job, runs: Path) -> bool:
    if job.kind == "evaluate":
        return Path(job.args[job.args.index("--out") + 1]).exists()
    run = runs / job.name
    log = run / "log.jsonl"
    if not log.exists():
        return False
    wanted = json.loads((run / "config.json").read_text())["epochs"]
    return json.loads(log.read_text().splitlines()[-1])["epoch"] >= wanted


def reproduce(
    runs: Path,
    jobs: int = 2,
    threads: int = 1,
    only: str | None = None,
    overrides: dict | None = None,
    evaluate_args: list[str] | None = None,
    log=print,
) -> int:
    """Run every unfinished job, `jobs` at a time; returns the number of failed jobs."""
    runs.mkdir(parents=True, exist_ok=True)
    every = protocol(runs, overrides or {}, evaluate_args or [])
    done = {j.name for j in every if _finished(j, runs)}
    pending = [j for j in every if j.name not in done and (not only or only in j.name)]
    failed: set[str] = set()
    running: dict[str, subprocess.Popen] = {}
    started: dict[str, float] = {}
    while pending or running:
        for name, proc in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            minutes = (time.time() - started[name]) / 60
            if proc.returncode == 0:
                done.add(name)
                log(f"done    {name} ({minutes:.1f} min)")
            else:
                failed.add(name)
                log(f"FAILED  {name} (exit {proc.returncode}; see its .out file)")
        for job in list(pending):
            if len(running) >= jobs:
                break
            if any(n in failed for n in job.needs):
                pending.remove(job)
                failed.add(job.name)
                log(f"skipped {job.name}: a job it needs failed")
            elif all(n in done for n in job.needs):
                pending.remove(job)
                out = runs / f"{job.name.replace(':', '-')}.out"
                cmd = [sys.executable, "-m", "ai_server.cli", "--threads", str(threads), *job.args]
                with open(out, "a") as f:
                    running[job.name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
                started[job.name] = time.time()
                log(f"started {job.name}")
        if not running and pending and not any(all(n in done for n in j.needs) for j in pending):
            for job in pending:
                log(f"waiting {job.name}: needs {', '.join(n for n in job.needs if n not in done)}")
            return len(failed) + len(pending)  # they need jobs left out by `only`
        time.sleep(2)
    return len(failed)
