"""The students trained on 7,752 identities, distilled view by view (docs/results/students/, `make students`).

Folders there: `teacher` (dlib, raw and centred vectors), `previous-default` (the model served before),
the Base students `base-arc<w>-s<seed>` (ArcFace weight w beside the distillation terms), `heatmap-s<seed>`
(4 channels, seeded from the better Base and reading its maps) and `control-s<seed>` (the same Base trained
on for the same epochs, RGB only). Every number comes from their metrics, logs and configs; `cost.json`
(bench/student_cost.py) gives the cost per face.
"""

import json
from pathlib import Path

from . import figures
from .distillation import parameters
from .runs import load_section
from .tables import ci, table

VAL, LFW, OLD_VAL = "celeba_ext_val", "lfw", "celeba_val"


def _label(run: dict) -> str:
    name = run["name"]
    if name == "teacher":
        return "dlib ResNet teacher (not served)"
    if name == "previous-default":
        return "previous default: ShuffleNetV2 Heatmap-distilled, 225 identities"
    config, log = run.get("config", {}), run.get("log", [])
    kind = {"base": "Base", "heatmap": "Heatmap", "control": "Base trained on (control)"}[name.split("-")[0]]
    width = config.get("arch", "shufflenet_v2_x1_0").rsplit("_", 2)[-2:]
    label = f"ShuffleNetV2 {width[0]}.{width[1]} {kind}"
    if name.startswith("base"):
        label += f", ArcFace weight {config['arcface_weight']:g}"
    if log and log[-1]["epoch"] < config["epochs"]:
        label += f" (probe: {log[-1]['epoch']} of {config['epochs']} epochs)"
    return label


def _order(runs: dict[str, dict]) -> list[dict]:
    rank = {"teacher": 0, "previous-default": 1, "base": 2, "heatmap": 3, "control": 4}
    return sorted(
        runs.values(), key=lambda r: (rank.get(r["name"].split("-")[0], rank.get(r["name"], 9)), r["name"])
    )


def _row(run: dict, view: str = "embedding") -> list[str]:
    m = run["metrics"]
    ident, vv, lfw = (
        m["identification"][VAL][view],
        m["verification"][VAL][view],
        m["verification"][LFW][view],
    )
    old = m["identification"].get(OLD_VAL, {}).get(view)
    return [
        _label(run) + (" (centred)" if view == "embedding_centred" else ""),
        run["name"],
        ci(ident["top1"], ident["top1_ci"]),
        ci(ident["top5"], ident["top5_ci"]),
        ci(vv["auc"], vv["auc_ci"]),
        f"{vv['eer']:.3f}",
        ci(vv["tar_at_far_0.001"], vv.get("tar_at_far_0.001_ci")),
        ci(lfw["auc"], lfw["auc_ci"]),
        f"{lfw['tar_at_far_0.001']:.3f}",
        f"{old['top1']:.3f} / {old['top5']:.3f}" if old else "",
    ]


HEADER = [
    "model",
    "run",
    "ext val top-1",
    "ext val top-5",
    "ext val AUC",
    "ext val EER",
    "ext val TAR@FAR 1e-3",
    "LFW AUC",
    "LFW TAR@FAR 1e-3",
    "CelebA val (62) top-1 / top-5",
]


def main_table(ordered: list[dict]) -> str:
    rows = []
    for run in ordered:
        rows.append(_row(run))
        if "embedding_centred" in run["metrics"]["verification"][VAL]:
            rows.append(_row(run, "embedding_centred"))
    return table(HEADER, rows)


def shipped_table(ordered: list[dict]) -> str:
    """The shipped float16 files measured again (what the manifest carries) beside their float32 runs."""
    rows = []
    for run in ordered:
        if "shipped" in run:
            rows.append(_row({**run, "metrics": run["shipped"]}) + [run["shipped"]["model"]["sha256"][:12]])
    return table([*HEADER, "file sha256"], rows) if rows else "Not shipped yet."


def training_table(trained: list[dict]) -> str:
    rows = []
    by_name = {r["name"]: r for r in trained}
    for run in trained:
        log, config = run["log"], run["config"]
        start = figures.epochs_before(run, by_name)
        seed = Path(config.get("init_from") or "").parent.name
        rows.append(
            [
                run["name"],
                f"{parameters(config):,}",
                f"{start + 1}-{start + log[-1]['epoch']}" + (f" (seeded by {seed})" if seed else ""),
                f"{config['lr']:g}" if "lr" in config else "",
                f"{log[-1].get('distill_cosine_loss', float('nan')):.3f}",
                f"{log[-1].get('monitor_top1', float('nan')):.3f}",
                f"{sum(e['train_seconds'] for e in log) / 3600:.1f}",
                f"{sum(e['images_per_s'] for e in log) / len(log):.0f}",
                f"{log[-1]['device']}, {log[-1]['threads']} thread(s)",
            ]
        )
    header = [
        "run",
        "parameters",
        "epochs (whole training)",
        "peak lr",
        "final centred cosine loss",
        "final monitor top-1 (200 ids)",
        "train hours",
        "images/s",
        "device",
    ]
    return table(header, rows)


def _finished(trained: list[dict]) -> list[dict]:
    """Evaluated runs trained to the end of their schedule (not probes)."""
    trained = [r for r in trained if "metrics" in r]
    return [r for r in trained if r["log"][-1]["epoch"] == r["config"]["epochs"]] or trained


def _top1(run: dict) -> dict:
    return run["metrics"]["identification"][VAL]["embedding"]


def _served(trained: list[dict]) -> dict:
    """The student the service serves: the finished Heatmap student (4 channels: the served kind), or
    without one the best finished student at one-shot top-1 on celeba_ext val (never LFW)."""
    finished = _finished(trained)
    heatmap = [r for r in finished if r["config"].get("in_channels") == 4]
    return max(heatmap or finished, key=lambda r: _top1(r)["top1"])


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def findings(runs: dict[str, dict], targets: dict | None) -> list[str]:
    """Plain sentences computed from the numbers: the targets, the heatmap question, the ArcFace weight."""
    out = []
    trained = [r for r in runs.values() if "log" in r]
    if not any("metrics" in r for r in trained):
        return out
    served = _served(trained)
    shown = served.get("shipped", served["metrics"])
    i, lfw = shown["identification"][VAL]["embedding"], shown["verification"][LFW]["embedding"]
    out.append(
        f"Served student on celeba_ext val ({served['name']}"
        f"{', as shipped' if 'shipped' in served else ''}): "
        f"one-shot top-1 {i['top1']:.3f}, top-5 {i['top5']:.3f} in a gallery of {i['gallery']:,} people; "
        f"LFW AUC {lfw['auc']:.3f} (targets: top-1 >= 0.60, top-5 >= 0.80, LFW AUC >= 0.97)."
    )
    best = max(_finished(trained), key=lambda r: _top1(r)["top1"])
    if best is not served:
        a, b = _top1(best), _top1(served)
        out.append(
            f"Best finished student at top-1: {best['name']}, {a['top1']:.3f} "
            f"({a['top1'] - b['top1']:+.3f} against {served['name']} in the same evaluation; 95% CIs "
            f"{'overlap' if _overlap(a['top1_ci'], b['top1_ci']) else 'do not overlap'})."
        )
    for name in ("teacher", "previous-default"):
        if name in runs:
            j = runs[name]["metrics"]["identification"][VAL]["embedding"]
            out.append(
                f"{_label(runs[name])}: top-1 {j['top1']:.3f}, top-5 {j['top5']:.3f} on the same searches."
            )
    pairs = [(h, runs.get(h.replace("heatmap", "control"))) for h in runs if h.startswith("heatmap-")]
    for heat, control in pairs:
        if "metrics" not in (control or {}) or "metrics" not in runs[heat]:
            continue
        a = runs[heat]["metrics"]["identification"][VAL]["embedding"]
        b = control["metrics"]["identification"][VAL]["embedding"]
        va, vb = (r["metrics"]["verification"][VAL]["embedding"] for r in (runs[heat], control))
        out.append(
            f"Heatmap student vs its equal-budget RGB control ({heat} vs {control['name']}): top-1 "
            f"{a['top1']:.3f} vs {b['top1']:.3f} ({a['top1'] - b['top1']:+.3f}; 95% CIs "
            f"{'overlap' if _overlap(a['top1_ci'], b['top1_ci']) else 'do not overlap'}), ext val AUC "
            f"{va['auc']:.3f} vs {vb['auc']:.3f} ({va['auc'] - vb['auc']:+.3f})."
        )
    out.extend(
        _arcface_probe(
            [r for r in trained if r["name"].startswith("base-arc") and not r["config"].get("init_from")]
        )
    )
    if targets:
        out.append(
            f"Teacher targets: {targets['views']} views of {targets['images']:,} images "
            f"({targets['targets'][0] * targets['targets'][1]:,} embeddings) by dlib {targets['dlib']} "
            f"{'with' if targets['dlib_blas'] else 'without'} BLAS, {targets['workers']} processes, "
            f"{targets['seconds_this_call'] / 3600:.1f} hours."
        )
    return out


def _arcface_probe(bases: list[dict]) -> list[str]:
    """The ArcFace weight's effect, read from the Base runs' logs at the last epoch they all reached."""
    if len(bases) < 2:
        return []
    epoch = min(len(r["log"]) for r in bases)
    cells = [
        f"weight {r['config']['arcface_weight']:g}: monitor top-1 {r['log'][epoch - 1]['monitor_top1']:.3f}, "
        f"1 - cos to the teacher {r['log'][epoch - 1]['distill_cosine_loss']:.3f}"
        for r in sorted(bases, key=lambda r: r["config"]["arcface_weight"])
    ]
    return [
        "ArcFace over the 7,752 identities beside the distillation terms, Base students after "
        f"{epoch} epochs of the same schedule (200 val identities): " + "; ".join(cells) + "."
    ]


def search_calibration(run: dict, figures_dir: Path) -> str:
    """Issue 19: the search probability the service shows, checked on identities it was not fitted on."""
    m = run.get("shipped", run["metrics"])
    model = m["identification"][VAL]["embedding"].get("calibration")
    if not model:
        return "No search calibration measured for this model."
    held = model["heldout"]
    figures.reliability(
        [
            (f"top-1 candidates (ECE {held['ece_top1']:.3f})", held["reliability_top1"]),
            (f"all top-5 candidates (ECE {held['ece_top5']:.3f})", held["reliability_top5"]),
        ],
        figures_dir / "search_reliability.png",
    )
    bins = table(
        ["confidence bin", "top-1 candidates", "mean confidence", "fraction that were the person"],
        [
            [
                f"{b['bin'][0]:.1f}-{b['bin'][1]:.1f}",
                str(b["n"]),
                f"{b['mean_probability']:.3f}",
                f"{b['fraction_right']:.3f}",
            ]
            for b in held["reliability_top1"]
        ],
    )
    sizes = table(
        ["people enrolled", "ECE, top-1 candidates"],
        [
            [n, f"{e:.3f}"]
            for n, e in sorted(held["ece_top1_by_gallery_size"].items(), key=lambda x: int(x[0]))
        ],
    )
    coef = dict(zip(model["features"], model["top1"]["coef"], strict=True))
    return "\n\n".join(
        [
            f"Model {run['name']}{' (as shipped)' if 'shipped' in run else ''}: fitted on searches over "
            f"{held['heldout_identities']} val identities, checked on searches over the other "
            f"{held['heldout_identities']} ({held['heldout_candidates']:,} candidates; galleries of 1 to "
            f"{max(int(n) for n in held['ece_top1_by_gallery_size'])} people, half of the queries of people "
            f"not enrolled). For the top candidate, each unit of log(gallery size) moves the log-odds by "
            f"{coef['log_gallery_size']:+.2f}: the same similarity means less in a larger gallery, and the "
            "service applies that to the gallery it searches (AI_SERVER_ENROLLED_PRIOR moves the assumed "
            "share of searches for someone enrolled).",
            "![search reliability](figures/search_reliability.png)",
            bins,
            sizes,
        ]
    )


def _cost(results: Path) -> str:
    path = results / "students" / "cost.json"
    if not path.exists():
        return "Cost per face: not measured yet (`python bench/student_cost.py`)."
    cost = json.loads(path.read_text())
    rows = [[m["model"], f"{m['ms_per_face']:.2f}", f"{m['ms_per_face_batch8']:.2f}"] for m in cost["models"]]
    return (
        f"Embedding + heatmap per face, flip TTA as served ({cost['hardware']}, {cost['threads']} threads, "
        f"load {cost['load_before']} before and {cost['load_after']} after; `bench/student_cost.py`):\n\n"
        + table(["model", "ms per face, batch 1", "ms per face, batch 8"], rows)
    )


def section(results: Path, figures_dir: Path) -> str:
    runs = load_section(results, "students")
    if not runs:
        return "No results yet: `make students` trains, evaluates and collects them."
    for folder, run in runs.items():
        shipped = results / "students" / folder / "metrics-shipped.json"
        if shipped.exists():
            run["shipped"] = json.loads(shipped.read_text())
    trained = [r for r in _order(runs) if "log" in r]
    ordered = [r for r in _order(runs) if "metrics" in r]
    figures.roc_panels(
        [(f"{_label(r)} ({r['name']})", r["metrics"]) for r in ordered],
        (VAL, LFW),
        figures_dir / "roc_students.png",
    )
    figures.by_gallery_size(ordered, VAL, _label, figures_dir / "students_gallery_size.png")
    figures.curves(
        trained,
        [
            ("monitor_top1", "one-shot top-1, 200 val identities"),
            ("distill_cosine_loss", "1 - cos to the centred teacher"),
        ],
        figures_dir / "students_epochs.png",
    )
    targets_file = results / "students" / "teacher-views.json"
    targets = json.loads(targets_file.read_text()) if targets_file.exists() else None
    return "\n\n".join(
        [
            "\n".join(f"- {line}" for line in findings(runs, targets)),
            "### One-shot identification and verification (celeba_ext val: 1,000 people never trained on)\n\n"
            + main_table(ordered),
            "![ROC students](figures/roc_students.png)",
            "![top-1 vs gallery size](figures/students_gallery_size.png)",
            "### As shipped (float16 files, measured again)\n\n" + shipped_table(ordered),
            "### The confidence a search shows (the served default's search calibration)\n\n"
            + search_calibration(_served(trained), figures_dir),
            "### Training: per-epoch curves and cost\n\n" + training_table(trained),
            "![per-epoch curves](figures/students_epochs.png)",
            _cost(results),
        ]
    )
