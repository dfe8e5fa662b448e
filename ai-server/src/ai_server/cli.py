"""`ai-server` command line: research commands now (train, evaluate); serving commands join them later."""

import argparse
import json
import shlex
import sys

import torch

from .perturb import ALL_CONDITIONS, Condition


def _setting(item: str) -> tuple[str, object]:
    """`key=value` with a JSON value (`epochs=3`, `augment={"erase": 0}`) or a bare string (a path)."""
    key, _, text = item.partition("=")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def _train(args: argparse.Namespace) -> None:
    from .train import TrainConfig, train

    with open(args.config) as f:
        values = json.load(f)
    values.update(_setting(item) for item in args.set)
    train(TrainConfig.from_dict(values), args.out, args.cache_dir, args.until_epoch)


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate

    conditions = [Condition.parse(c) for c in args.conditions] if args.conditions else ALL_CONDITIONS
    evaluate(
        args.model,
        args.out,
        closed_sets=tuple(args.sets),
        conditions=conditions,
        pair_sets=tuple(args.pairs),
        repeats=args.repeats,
        max_images=args.max_images,
        pairs_per_fold=args.pairs_per_fold,
        n_boot=args.bootstrap,
        seed=args.seed,
    )


def _reproduce(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .reproduce import reproduce

    overrides = dict(_setting(item) for item in args.set)
    failures = reproduce(
        Path(args.runs), args.jobs, args.job_threads, args.only, overrides, shlex.split(args.evaluate_args)
    )
    if failures:
        raise RuntimeError(f"{failures} job(s) failed or could not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ai-server", description=__doc__)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train or resume a run (Base or Heatmap model)")
    p.add_argument("config", help="JSON file of training options (see ai_server.train.TrainConfig)")
    p.add_argument("--out", required=True, help="run folder; an existing run there is resumed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an option")
    p.add_argument("--cache-dir", help="heatmap cache (default: <out>/../.heatmap-cache)")
    p.add_argument("--until-epoch", type=int, help="stop after this epoch (resume later)")
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="evaluate a model file and write a metrics JSON")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("--sets", nargs="*", default=["heldout", "yale_dark"])
    p.add_argument("--pairs", nargs="*", default=["celeba_val", "lfw"])
    p.add_argument("--conditions", nargs="*", help="e.g. original occlusion_0.3 (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="draws per random condition")
    p.add_argument("--max-images", type=int, help="evenly spaced subset of each closed set")
    p.add_argument("--pairs-per-fold", type=int, help="first n same and n different pairs per fold")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("reproduce", help="run the paper's protocol: train and evaluate every model")
    p.add_argument("--runs", default="runs/repro", help="folder of all runs (resumed if present)")
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time")
    p.add_argument("--job-threads", type=int, default=1, help="torch threads per job")
    p.add_argument("--only", help="only jobs whose name contains this (e.g. shufflenet-base-s0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every recipe")
    p.add_argument("--evaluate-args", default="", help="extra options for each evaluate job")
    p.set_defaults(run=_reproduce)

    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"ai-server {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
