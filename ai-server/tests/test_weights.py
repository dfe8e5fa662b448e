"""Shipped weights: one float16 ONNX graph per model, which the service (ONNX Runtime) and the evaluation
(torch, from the same file) both trust only after a sha256 check."""

import json
import shutil

import onnx
import pytest
import torch
import torch.nn.functional as F
from conftest import smoke_config

from ai_server.core.models import load_model
from ai_server.core.recognizer import Recognizer, load_recognizer
from ai_server.core.shipping import export_model, reexport_manifest
from ai_server.core.weights import WeightsError, default_weights_dir, load_manifest, onnx_file, sha256_file
from ai_server.research import data
from ai_server.research.evaluate import evaluate
from ai_server.research.ship import ship
from ai_server.research.train import train
from ai_server.serving.pipeline.runtime import ServedModel


def test_a_shipped_heatmap_model_embeds_like_its_run(tiny_runs, tiny_weights):
    faces = data.load_images(data.validation_identities().paths[:8]).float() / 255
    run = Recognizer.load(tiny_runs["heatmap"])
    shipped = Recognizer.load(tiny_weights / "tiny-heatmap.onnx")  # what `make evaluate` loads
    served = load_recognizer(tiny_weights, "tiny-heatmap", load_manifest(tiny_weights))
    graph = onnx.load(str(tiny_weights / "tiny-heatmap.onnx"))
    weights = [i for i in graph.graph.initializer if i.name.startswith("model.")]
    assert weights and {i.data_type for i in weights} == {onnx.TensorProto.FLOAT16}
    expected = run.embed(faces, run.heatmaps(faces))
    for recognizer in (shipped, served):
        got = recognizer.embed(faces, recognizer.heatmaps(faces))
        assert F.cosine_similarity(got, expected).min() > 0.99


def test_a_graph_holds_exactly_the_float16_weights_of_its_run(tiny_runs, tmp_path):
    """Research reads back from the graph the weights the service runs: the run's, rounded to float16."""
    entry = export_model(tiny_runs["base"], tmp_path, "base", command="test")
    assert (
        entry["file"] == "base.onnx" and entry["onnx"]["opset"] == 17 and entry["onnx"]["command"] == "test"
    )
    model, head, config = load_model(tiny_runs["base"])
    back, back_head, back_config = load_model(tmp_path / "base.onnx")
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(back.state_dict()[key], value.half().float()), key
    assert torch.equal(back_head.weight, head.weight.half().float())
    assert back_config["arch"] == config["arch"] and "train_config" not in back_config


def test_a_changed_byte_is_refused(tiny_weights, tmp_path):
    copy = shutil.copytree(tiny_weights, tmp_path / "w")
    load_manifest(copy)
    blob = bytearray((copy / "tiny-base.onnx").read_bytes())
    blob[-100] ^= 1
    (copy / "tiny-base.onnx").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256"):
        load_manifest(copy)


def test_a_manifest_of_pt_files_is_converted_with_the_same_weights_and_facts(tiny_weights, tmp_path):
    """`ai-server export-onnx` on a manifest shipped before the graphs (a `.pt` file per model): every
    model gets its graph, keeps its calibration and metrics, and the `.pt` files go; the service refuses
    the old manifest with the command to run."""
    old = shutil.copytree(tiny_weights, tmp_path / "w")
    manifest = json.loads((old / "manifest.json").read_text())
    for name in ("tiny-base", "tiny-heatmap"):  # the same weights as the .pt files ship used to write
        model, head, config = load_model(old / f"{name}.onnx")
        if name == "tiny-heatmap":
            config["heatmap"] = {**config["heatmap"], "source": "tiny-base.pt"}
        state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        torch.save(
            {"config": config, "model": state, "head": {"weight": head.weight.half()}}, old / f"{name}.pt"
        )
        (old / f"{name}.onnx").unlink()
        entry = manifest["models"][name]
        entry.update(file=f"{name}.pt", sha256=sha256_file(old / f"{name}.pt"))
        entry.pop("onnx")
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="export-onnx"):
        onnx_file(old, load_manifest(old), "tiny-heatmap")
    reexport_manifest(old, "ai-server export-onnx --weights w")
    converted = load_manifest(old)
    assert sorted(p.name for p in old.iterdir()) == ["manifest.json", "tiny-base.onnx", "tiny-heatmap.onnx"]
    for name, entry in converted["models"].items():
        before = json.loads((tiny_weights / "manifest.json").read_text())["models"][name]
        assert entry["calibration"] == before["calibration"] and entry["metrics"] == before["metrics"]
        assert entry["onnx"]["converted_from"]["file"] == f"{name}.pt"
        assert entry["sha256"] == before["sha256"]  # the same weights give the same graph, byte for byte
    ServedModel(old, converted, "tiny-heatmap")


def test_ship_needs_the_heatmap_source_and_any_order_works(tiny_runs, tiny_weights, tmp_path):
    """(`tiny_weights` evaluated the runs: ship reads their metrics.)"""
    root = tiny_runs["root"]
    with pytest.raises(ValueError, match="must be shipped or kept too"):
        ship(root, tmp_path / "a", {"tiny-heatmap": "heatmap"}, "tiny-heatmap", "test")
    ship(root, tmp_path / "b", {"tiny-heatmap": "heatmap", "tiny-base": "base"}, "tiny-heatmap", "test")
    assert load_manifest(tmp_path / "b")["models"]["tiny-heatmap"]["heatmap_source"] == "tiny-base"


def test_a_run_seeded_from_shipped_graphs_ships_beside_the_kept_base_it_read(tiny_weights, tmp_path):
    """A session whose run folders are gone trains on from copies of the shipped graphs (as `make
    student-cont3` does): a Heatmap run seeded by the Heatmap graph and reading the Base graph's maps ships
    with that Base kept as it is."""
    out = shutil.copytree(tiny_weights, tmp_path / "w")
    runs = tmp_path / "runs"
    shipped = {}
    for key, name in (("heatmap_source", "tiny-base"), ("init_from", "tiny-heatmap")):
        (runs / name).mkdir(parents=True)
        shipped[key] = str(shutil.copyfile(out / f"{name}.onnx", runs / name / "shipped.onnx"))
    train(smoke_config(in_channels=4, **shipped), runs / "cont", log=lambda _: None)
    evaluate(
        runs / "cont" / "model.pt",
        runs / "cont" / "metrics.json",
        closed_sets=(),
        pair_sets=("celeba_val",),
        pairs_per_fold=20,
        n_boot=20,
        max_identities=20,
        log=lambda _: None,
    )
    with pytest.raises(ValueError, match="must be shipped or kept too"):
        ship(runs, out, {"tiny-heatmap-2": "cont"}, "tiny-heatmap-2", "test")
    base_before = load_manifest(out)["models"]["tiny-base"]
    ship(runs, out, {"tiny-heatmap-2": "cont"}, "tiny-heatmap-2", "test", keep=("tiny-base",))
    manifest = load_manifest(out)
    assert (
        set(manifest["models"]) == {"tiny-base", "tiny-heatmap-2"}
        and not (out / "tiny-heatmap.onnx").exists()
    )
    assert manifest["models"]["tiny-base"] == base_before
    assert manifest["models"]["tiny-heatmap-2"]["heatmap_source"] == "tiny-base"
    faces = data.load_images(data.validation_identities().paths[:2])
    served = ServedModel(out, manifest, "tiny-heatmap-2").run(faces.permute(0, 2, 3, 1).contiguous().numpy())
    expected = load_recognizer(out, "tiny-heatmap-2", manifest).run(faces.float() / 255).embedding
    assert F.cosine_similarity(torch.from_numpy(served.embedding), expected).min() >= 0.9999


def test_the_repository_ships_verified_weights_with_calibration():
    folder = default_weights_dir()
    manifest = load_manifest(folder)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 25 * 2**20  # everything in it, not only graphs
    assert all(
        entry["file"].endswith(".onnx") and entry["onnx"]["command"] for entry in manifest["models"].values()
    )
    assert all(e["heatmap_source"] in (None, *manifest["models"]) for e in manifest["models"].values())
    default = manifest["models"][manifest["default"]]
    calibration = default["calibration"]["embedding"]
    assert 0 < calibration["no_match_threshold"] < 1 and calibration["a"] > 0
    command = default["training"]["command"].split()
    assert command[0] == "ai-server" and "ship" in command  # made by `ai-server [--threads N] ship`


def test_ship_keeps_named_models_removes_stale_files_and_measures_the_shipped_file(
    tiny_runs, tiny_weights, tmp_path
):
    out = shutil.copytree(tiny_weights, tmp_path / "w")
    (out / "retired-model.pt").write_bytes(b"a model no entry names")
    (out / "retired-model.onnx").write_bytes(b"a graph no entry names")
    ship(
        tiny_runs["root"],
        out,
        {"tiny-base-2": "base"},
        "tiny-heatmap",
        "test",
        keep=("tiny-base", "tiny-heatmap"),
    )
    manifest = load_manifest(out)
    assert set(manifest["models"]) == {"tiny-base", "tiny-heatmap", "tiny-base-2"}
    assert not (out / "retired-model.pt").exists() and not (out / "retired-model.onnx").exists()
    assert (
        manifest["models"]["tiny-base"]["sha256"]
        == load_manifest(tiny_weights)["models"]["tiny-base"]["sha256"]
    )
    entry = manifest["models"]["tiny-base-2"]
    assert entry["metrics_of"] == "the shipped float16 file"
    assert entry["calibration"]["embedding"]["fitted_on"] == "celeba_val"  # never LFW
    shipped = json.loads((tiny_runs["root"] / "base" / "metrics-shipped.json").read_text())
    assert shipped["model"]["sha256"] == entry["sha256"]
    assert (
        entry["metrics"]["verification"]["celeba_val"]["auc"]
        == shipped["verification"]["celeba_val"]["embedding"]["auc"]
    )


def test_ship_beside_kept_graphs_writes_exactly_what_the_service_loads(tiny_runs, tiny_weights, tmp_path):
    """`make student-ship`'s shape through the command line: a new Base + Heatmap pair shipped beside kept
    models that exist only as graphs (no `.pt` anywhere), a new default. The kept entries stay byte for
    byte; each new one is its graph (sha256, export command), calibration, metrics and provenance; and
    ONNX Runtime serves every model straight from the folder, embedding as torch does from the same file."""
    from ai_server.cli import main

    out = shutil.copytree(tiny_weights, tmp_path / "w")
    before = load_manifest(out)["models"]
    args = ["ship", "--runs", str(tiny_runs["root"]), "--out", str(out), "--model", "new-base=base"]
    args += ["--model", "new-heatmap=heatmap", "--keep", "tiny-base", "--keep", "tiny-heatmap"]
    assert main([*args, "--default", "new-heatmap", "--make-target", "students"]) == 0
    manifest = load_manifest(out)  # every sha256 checked
    models = manifest["models"]
    assert manifest["default"] == "new-heatmap" and {n: models[n] for n in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", *sorted(f"{n}.onnx" for n in models)]
    new = models["new-heatmap"]
    assert new["heatmap_source"] == "new-base" and new["training"]["run"] == "heatmap"
    assert new["onnx"]["graph_format"] == 1 and new["onnx"]["command"].startswith("ai-server ")
    assert new["calibration"]["embedding"]["fitted_on"] == "celeba_val" and new["metrics"]["verification"]
    assert load_model(out / "new-heatmap.onnx")[2]["heatmap"]["source"] == "new-base.onnx"
    shipped = json.loads((tiny_runs["root"] / "heatmap" / "metrics-shipped.json").read_text())
    assert shipped["protocol"]["max_identities"] == 20  # the run's protocol, replayed on the shipped file
    assert shipped["identification"]["celeba_val"]["embedding"]["gallery"] == 20
    faces = data.load_images(data.validation_identities().paths[:4])
    for name in models:
        served = ServedModel(out, manifest, name).run(faces.permute(0, 2, 3, 1).contiguous().numpy())
        expected = load_recognizer(out, name, manifest).run(faces.float() / 255).embedding
        assert F.cosine_similarity(torch.from_numpy(served.embedding), expected).min() >= 0.9999, name


def test_pick_prints_the_run_best_at_a_metric(tmp_path, capsys):
    from ai_server.cli import main

    for run, top1 in (("a", 0.4), ("b", 0.7), ("c", 0.5)):
        (tmp_path / run).mkdir()
        metrics = {"identification": {"celeba_ext_val": {"embedding": {"top1": top1}}}}
        (tmp_path / run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["pick", *(str(tmp_path / r) for r in "abc")]) == 0
    assert capsys.readouterr().out.strip() == "b"
