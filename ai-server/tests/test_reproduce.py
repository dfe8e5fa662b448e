import json

from ai_server.research.reproduce import protocol, reproduce

TINY = {"epochs": 1, "identities": 4, "max_steps_per_epoch": 1, "batch_size": 16}
QUICK_EVAL = ["--sets", "heldout", "--conditions", "original", "--pairs", "--bootstrap", "10"]


def test_protocol_runs_in_dependency_order_and_skips_finished_jobs(tmp_path):
    lines = []
    # the seeded Heatmap run needs its Base run, which is left out: nothing may start
    assert reproduce(tmp_path, only="shufflenet-heatmap-s0", overrides=TINY, log=lines.append) > 0
    assert any(line.startswith("waiting shufflenet-heatmap-s0") for line in lines)
    assert reproduce(tmp_path, only="shufflenet-base-s0", overrides=TINY, evaluate_args=QUICK_EVAL) == 0
    lines.clear()
    assert (
        reproduce(
            tmp_path, only="shufflenet-heatmap-s0", overrides=TINY, evaluate_args=QUICK_EVAL, log=lines.append
        )
        == 0
    )
    assert not any("shufflenet-base-s0" in line for line in lines)  # finished: not run again
    config = json.loads((tmp_path / "shufflenet-heatmap-s0" / "config.json").read_text())
    assert config["in_channels"] == 4 and config["init_from"].endswith("shufflenet-base-s0/model.pt")
    metrics = json.loads((tmp_path / "shufflenet-heatmap-s0" / "metrics.json").read_text())
    assert metrics["model"]["heatmap"]["source"] == "../shufflenet-base-s0/model.pt"
    assert "original" in metrics["closed_set"]["heldout"]


def test_the_served_backbone_gets_an_equal_budget_base_control(tmp_path):
    jobs = {job.name: job for job in protocol(tmp_path, {}, [])}
    control = jobs["shufflenet-continued-s1"]
    config = json.loads((tmp_path / "configs" / "shufflenet-continued-s1.json").read_text())
    assert control.needs == ["shufflenet-base-s1"] and config.get("in_channels", 3) == 3
    assert config["init_from"].endswith("shufflenet-base-s1/model.pt") and "heatmap_source" not in config
    assert not any(name.startswith("mobilenet-continued") for name in jobs)
