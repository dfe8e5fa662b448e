"""`ai-server` command line: research (train, evaluate, reproduce, report, ship, export-onnx) and service
commands (serve, enrol, reembed, gallery).

Nothing torch-based is imported at start: the serving image runs this command without torch, and each
research command imports what it needs when it runs."""

import argparse
import json
import shlex
import sys
from pathlib import Path

from .core.weights import WeightsError, default_weights_dir
from .serving.errors import ServiceError
from .serving.gallery import ArchiveError
from .serving.settings import SettingsError, load_settings


def _setting(item: str) -> tuple[str, object]:
    """`key=value` with a JSON value (`epochs=3`, `augment={"erase": 0}`) or a bare string (a path)."""
    key, _, text = item.partition("=")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def _train(args: argparse.Namespace) -> None:
    from .research.train import TrainConfig, train

    with open(args.config) as f:
        values = json.load(f)
    values.update(_setting(item) for item in args.set)
    train(TrainConfig.from_dict(values), args.out, args.cache_dir, args.until_epoch)


def _evaluate(args: argparse.Namespace) -> None:
    from .research.evaluate import evaluate
    from .research.perturb import ALL_CONDITIONS, Condition

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
        identity_ci=args.identity_ci,
        max_identities=args.max_identities,
    )


def _teacher(args: argparse.Namespace) -> None:
    from .research.teacher import evaluate_teacher

    centre = None
    if args.centre_views:
        import torch

        from .research import data
        from .research.teacher import view_targets

        paths = data.distillation_identities().paths
        targets = view_targets(paths, args.centre_views, args.views_cache)
        centre = torch.nn.functional.normalize(targets, dim=-1).mean(dim=(0, 1))
    evaluate_teacher(
        args.out,
        args.cache,
        args.pairs_per_fold,
        args.bootstrap,
        args.seed,
        tuple(args.pairs),
        args.identity_ci,
        centre,
    )


def _teacher_views(args: argparse.Namespace) -> None:
    import time

    import dlib

    from .research import data
    from .research.teacher import view_targets

    images = data.distillation_identities()
    if args.identities:
        images = images.in_classes(images.classes[:: max(1, len(images.classes) // args.identities)])
    started = time.perf_counter()
    targets = view_targets(images.paths, args.views, args.cache, workers=args.workers, chunk=args.chunk)
    summary = {
        "images": len(images),
        "views": args.views,
        "targets": list(targets.shape),
        "dlib": dlib.__version__,
        "dlib_blas": bool(dlib.DLIB_USE_BLAS),
        "workers": args.workers,
        "seconds_this_call": round(time.perf_counter() - started, 1),
    }
    summary_file = Path(args.cache) / "summary.json"
    if (
        summary["seconds_this_call"] > 60 or not summary_file.exists()
    ):  # keep the build's time, not a reload's
        summary_file.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


def _pick(args: argparse.Namespace) -> None:
    """Print the run folder whose metrics score highest at `--metric` (a /-separated path)."""

    def score(run: str) -> float:
        value = json.loads((Path(run) / "metrics.json").read_text())
        for key in args.metric.split("/"):
            value = value[key]
        return float(value)

    print(Path(max(args.runs, key=score)).name)


def _reproduce(args: argparse.Namespace) -> None:
    from .research.reproduce import reproduce

    overrides = dict(_setting(item) for item in args.set)
    failures = reproduce(
        Path(args.runs), args.jobs, args.job_threads, args.only, overrides, shlex.split(args.evaluate_args)
    )
    if failures:
        raise RuntimeError(f"{failures} job(s) failed or could not start")


def _ship(args: argparse.Namespace) -> None:
    from .research.ship import ship

    models = dict(item.split("=", 1) for item in args.model)
    command = "ai-server " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(
        ship(
            Path(args.runs), Path(args.out), models, args.default, command, tuple(args.keep), args.make_target
        )
    )


def _export_onnx(args: argparse.Namespace) -> None:
    from .core.shipping import reexport_manifest

    command = "ai-server " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(reexport_manifest(Path(args.weights), command))


def _report(args: argparse.Namespace) -> None:
    from .research.report import collect, evaluate_shipped, write_report

    results, weights = Path(args.results), Path(args.weights)
    if args.collect:
        copied = collect(Path(args.collect), results, args.section)
        print(f"copied the metrics of {len(copied)} runs into {results / args.section}")
    if args.evaluate_shipped:
        evaluate_shipped(weights, results)
    print(write_report(results, Path(args.docs), weights))


def _service(args: argparse.Namespace, verify: bool = True):
    """Settings, engine and gallery as the server opens them (AI_SERVER_* variables, then the options)."""
    from .serving.service import open_service

    overrides = {k: v for k, v in {"data_dir": args.data_dir, "model": args.model}.items() if v}
    settings = load_settings(**overrides)
    return (settings, *open_service(settings, verify=verify))


def _serve(args: argparse.Namespace) -> None:
    """Check the settings and the weights here, once and clearly, then become gunicorn."""
    import os
    import shutil

    from .core.weights import load_manifest

    settings = load_settings()
    manifest = load_manifest(settings.weights_dir)  # fail here, clearly, rather than in every worker
    if settings.model and settings.model not in manifest["models"]:
        known = sorted(manifest["models"])
        raise SettingsError(f"AI_SERVER_MODEL={settings.model!r}: not a model of the manifest {known}")
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    os.execv(gunicorn, [gunicorn, "--config", "python:ai_server.serving.gunicorn_conf"])


def _enrol(args: argparse.Namespace) -> None:
    from .serving.enrol import enrol_folder

    s, engine, gallery = _service(args)
    only = set(Path(args.people).read_text().split()) if args.people else None
    report = enrol_folder(
        engine,
        gallery,
        Path(args.folder),
        args.aligned,
        s.max_image_bytes,
        s.max_pixels,
        args.per_person,
        only,
    )
    print(json.dumps({**report, "skipped": len(report["skipped"])}))
    for item in report["skipped"]:
        print(f"skipped {item['image']}: {item['message']}", file=sys.stderr)


def _reembed(args: argparse.Namespace) -> None:
    from .serving.enrol import reembed

    _, engine, gallery = _service(args, verify=False)
    print(json.dumps({"re_embedded": reembed(engine, gallery)}))


def _gallery(args: argparse.Namespace) -> None:
    from .serving.gallery import export_archive, import_archive

    data_dir = Path(args.data_dir) if args.data_dir else load_settings().data_dir
    if args.action == "export":
        print(json.dumps(export_archive(data_dir, args.archive)))
    elif args.action == "import":
        import_archive(args.archive, data_dir)
        print(json.dumps({"imported_into": str(data_dir)}))
    elif args.action in ("repair", "migrate"):
        _gallery_maintenance(args)
    else:
        _, _, gallery = _service(args, verify=False)
        print(json.dumps(gallery.stats(), indent=2))


def _gallery_maintenance(args: argparse.Namespace) -> None:
    """Rebuild Milvus from PostgreSQL (repair), or copy the embedded gallery into both (migrate)."""
    from .serving.gallery.maintenance import migrate, repair

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if args.action == "repair":
        if not settings.postgres_url:
            raise SettingsError(
                "repair rebuilds Milvus from PostgreSQL: set AI_SERVER_POSTGRES_URL and AI_SERVER_MILVUS_URI "
                "(an embedded gallery's FAISS indexes are rebuilt by every process when it starts)"
            )
        print(
            json.dumps({"rebuilt": repair(settings.postgres_conninfo(), settings.milvus_uri, settings.index)})
        )
        return
    if not (args.to_postgres and args.to_milvus):
        raise SettingsError("migrate needs --to-postgres postgresql://... and --to-milvus http://...")
    checked = load_settings(postgres_url=args.to_postgres, milvus_uri=args.to_milvus)  # the URL checks
    report = migrate(settings.data_dir, checked.postgres_url, checked.milvus_uri, settings.index)
    print(json.dumps(report))


def _add_train_evaluate(sub) -> None:
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
    p.add_argument("--identity-ci", action="store_true", help="CIs resample identities, not pairs/queries")
    p.add_argument("--max-identities", type=int, help="identification over n evenly spaced identities only")
    p.set_defaults(run=_evaluate)


def _add_teacher(sub) -> None:
    p = sub.add_parser("teacher", help="evaluate the distillation teacher (dlib ResNet) on the pairs sets")
    p.add_argument("--out", required=True, help="metrics JSON")
    p.add_argument("--cache", default="runs/distil/.teacher-cache", help="teacher embedding cache")
    p.add_argument("--pairs-per-fold", type=int, help="first n same and n different pairs per fold")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", nargs="*", default=["celeba_val", "lfw"])
    p.add_argument("--identity-ci", action="store_true", help="CIs resample identities, not pairs/queries")
    p.add_argument("--centre-views", type=int, help="also score centred vectors (mean of these views)")
    p.add_argument("--views-cache", default="runs/students/.teacher-views", help="see teacher-views")
    p.set_defaults(run=_teacher)

    p = sub.add_parser("teacher-views", help="the teacher's targets for views of every distillation image")
    p.add_argument("--views", type=int, default=8, help="views per image: crop, mirror, then augmented")
    p.add_argument("--cache", default="runs/students/.teacher-views", help="target cache (resumable)")
    p.add_argument("--workers", type=int, default=2, help="teacher processes (one thread each)")
    p.add_argument("--chunk", type=int, default=256, help="images per cache file")
    p.add_argument("--identities", type=int, help="about this many evenly spaced identities (smoke runs)")
    p.set_defaults(run=_teacher_views)


def _add_protocol(sub) -> None:
    """The reproduction protocol and what follows a run: ship its weights, pick the best, the report."""
    p = sub.add_parser("reproduce", help="run the paper's protocol: train and evaluate every model")
    p.add_argument("--runs", default="runs/repro", help="folder of all runs (resumed if present)")
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time")
    p.add_argument("--job-threads", type=int, default=1, help="torch threads per job")
    p.add_argument("--only", help="only jobs whose name contains this (e.g. shufflenet-base-s0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every recipe")
    p.add_argument("--evaluate-args", default="", help="extra options for each evaluate job")
    p.set_defaults(run=_reproduce)

    p = sub.add_parser("ship", help="export evaluated runs as float16 ONNX graphs + manifest.json")
    p.add_argument("--runs", default="runs/repro")
    p.add_argument("--out", default="model-weights")
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=RUN",
        help="e.g. shufflenet-heatmap=shufflenet-heatmap-s0",
    )
    p.add_argument("--default", required=True, help="the manifest name served by default")
    p.add_argument("--keep", action="append", default=[], help="a model of the current manifest to keep")
    p.add_argument("--make-target", help="the make target that rebuilds these weights (provenance)")
    p.set_defaults(run=_ship)

    p = sub.add_parser("export-onnx", help="(re)export every model of a manifest as its ONNX graph")
    p.add_argument("--weights", default=str(default_weights_dir()), help="the folder of manifest.json")
    p.set_defaults(run=_export_onnx)

    p = sub.add_parser("pick", help="print the run whose metrics.json is best at a metric")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--metric", default="identification/celeba_ext_val/embedding/top1")
    p.set_defaults(run=_pick)

    p = sub.add_parser("report", help="write docs/results.md and docs/figures from the committed metrics")
    p.add_argument("--collect", metavar="RUNS", help="first copy every evaluated run's metrics from RUNS")
    p.add_argument("--section", default="runs", help="where --collect puts them: runs, distil, students")
    p.add_argument("--evaluate-shipped", action="store_true", help="first re-evaluate the shipped weights")
    p.add_argument("--results", default="docs/results")
    p.add_argument("--docs", default="docs")
    p.add_argument("--weights", default=str(default_weights_dir()))
    p.set_defaults(run=_report)


def _gallery_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="gallery folder (default: AI_SERVER_DATA_DIR or data/ai-server)")
    p.add_argument("--model", help="manifest model (default: AI_SERVER_MODEL or the manifest's default)")


def _add_service(sub) -> None:
    p = sub.add_parser("serve", help="run the HTTP service under gunicorn (AI_SERVER_* variables)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("enrol", help="enrol a folder laid out <person>/<images> (resumable)")
    p.add_argument("folder")
    p.add_argument("--aligned", action="store_true", help="the images are already aligned 112x112 crops")
    p.add_argument("--per-person", type=int, help="at most this many images per person")
    p.add_argument("--people", help="a file listing the subfolders to enrol (one per line)")
    _gallery_options(p)
    p.set_defaults(run=_enrol)

    p = sub.add_parser("reembed", help="compute the served model's vectors for faces that lack them")
    _gallery_options(p)
    p.set_defaults(run=_reembed)

    p = sub.add_parser(
        "gallery", help="gallery statistics, export and import (embedded), repair and migrate (shared)"
    )
    p.add_argument("action", choices=["stats", "export", "import", "repair", "migrate"])
    p.add_argument("archive", nargs="?", help="the .tar.gz to write (export) or read (import)")
    p.add_argument("--to-postgres", help="migrate: the PostgreSQL URL to copy the embedded gallery into")
    p.add_argument("--to-milvus", help="migrate: the Milvus URI (http://host:19530) to index it in")
    _gallery_options(p)
    p.set_defaults(run=_gallery)


def build_parser() -> argparse.ArgumentParser:
    """Every command, in the order `ai-server --help` lists them: research, then the service."""
    parser = argparse.ArgumentParser(prog="ai-server", description=__doc__)
    parser.add_argument("--threads", type=int, help="torch CPU threads of research commands (default: all)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_commands in (_add_train_evaluate, _add_teacher, _add_protocol, _add_service):
        add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        try:
            import torch
        except ImportError:  # the serving image: no research command to give them to
            pass
        else:
            torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except (
        SettingsError,
        ValueError,
        FileNotFoundError,
        RuntimeError,
        WeightsError,
        ServiceError,
        ArchiveError,
    ) as err:
        print(f"ai-server {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
