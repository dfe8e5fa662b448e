import numpy as np
import pytest
from sklearn import metrics as sk

from ai_server.research.metrics import (
    accuracy,
    best_threshold,
    bootstrap_ci,
    eer,
    kfold_accuracy,
    macro_f1,
    roc_auc,
    roc_curve,
    tar_at_far,
    verification_report,
)


@pytest.mark.parametrize("seed", range(5))
def test_closed_set_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 30, 400)
    pred = np.where(rng.random(400) < 0.6, y, rng.integers(0, 35, 400))  # some labels never true
    assert accuracy(y, pred) == pytest.approx(sk.accuracy_score(y, pred))
    assert macro_f1(y, pred) == pytest.approx(sk.f1_score(y, pred, average="macro", zero_division=0.0))


@pytest.mark.parametrize("seed", range(5))
def test_roc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    same = rng.random(600) < 0.5
    scores = np.round(rng.normal(same * 1.0, 1.0), 1)  # rounding makes ties
    assert roc_auc(scores, same) == pytest.approx(sk.roc_auc_score(same, scores))
    fpr, tpr, thr = roc_curve(scores, same)
    sk_fpr, sk_tpr, sk_thr = sk.roc_curve(same, scores, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr) and np.allclose(thr[1:], sk_thr[1:])


def test_eer_and_tar():
    same = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    separable = np.r_[np.linspace(1, 2, 1000), np.linspace(-1, 0, 1000)]
    fpr, tpr, _ = roc_curve(separable, same)
    assert eer(fpr, tpr) == 0 and tar_at_far(fpr, tpr, 1e-3) == 1
    # positives 0..999, negatives 0.5..999.5 shifted: an even overlap gives EER near 0.5
    overlap = np.r_[np.arange(1000.0), np.arange(1000.0) + 0.5]
    fpr, tpr, _ = roc_curve(overlap, same)
    assert eer(fpr, tpr) == pytest.approx(0.5, abs=0.002)
    # 10 of 1000 negatives above every positive: TAR is 0 until FAR reaches 1%
    scores = np.r_[np.zeros(1000), np.full(990, -1.0), np.full(10, 1.0)]
    fpr, tpr, _ = roc_curve(scores, same)
    assert tar_at_far(fpr, tpr, 1e-3) == 0 and tar_at_far(fpr, tpr, 1e-2) == 1


def test_best_threshold_is_the_brute_force_optimum():
    rng = np.random.default_rng(0)
    same = rng.random(300) < 0.5
    scores = np.round(rng.normal(same * 1.5, 1.0), 1)
    thr = best_threshold(scores, same)
    candidates = np.r_[np.unique(scores), np.inf]
    best = max(np.mean((scores >= t) == same) for t in candidates)
    assert np.mean((scores >= thr) == same) == pytest.approx(best)


def test_kfold_accuracy():
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    fold = np.repeat(np.arange(10), 60)
    assert kfold_accuracy(same * 2.0 - 1.0, same, fold) == (1.0, 0.0)
    mean, std = kfold_accuracy(np.random.default_rng(0).random(600), same, fold)
    assert 0.3 < mean < 0.7 and std > 0


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data():
    rng = np.random.default_rng(0)
    widths = []
    for n in (200, 2000):
        same = rng.random(n) < 0.5
        scores = rng.normal(same * 1.0, 1.0)
        low, high = bootstrap_ci(roc_auc, scores, same, n=300)
        assert low < roc_auc(scores, same) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_verification_report_fields():
    rng = np.random.default_rng(1)
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    scores = rng.normal(same * 2.0, 1.0)
    report = verification_report(scores, same, np.repeat(np.arange(10), 60), n_boot=100)
    assert report["auc_ci"][0] < report["auc"] < report["auc_ci"][1]
    assert 0 < report["eer"] < 0.5 and 0 <= report["tar_at_far_0.001"] <= report["tar_at_far_0.01"] <= 1
    assert report["roc"]["fpr"][0] == 0 and report["roc"]["tpr"][-1] == 1


def test_identity_bootstrap_is_wider_than_row_bootstrap_when_rows_of_an_identity_agree():
    """Pairs of one identity are not independent: resampling identities must give the wider interval."""
    from ai_server.research.metrics import cluster_bootstrap_ci

    rng = np.random.default_rng(0)
    identity = np.repeat(np.arange(40), 25)  # 40 identities, 25 pairs each
    easy = rng.random(40) < 0.5  # per identity, its pairs are all easy or all hard
    same = rng.random(len(identity)) < 0.5
    scores = np.where(easy[identity], same * 2.0, 0.0) + rng.normal(0, 1, len(identity))
    rows = bootstrap_ci(roc_auc, scores, same, n=300)
    ids = cluster_bootstrap_ci(roc_auc, identity, scores, same, n=300)
    assert ids[0] <= roc_auc(scores, same) <= ids[1]
    assert ids[1] - ids[0] > 1.3 * (rows[1] - rows[0]), (rows, ids)
    report = verification_report(scores, same, identity % 10, n_boot=100, clusters=identity)
    assert (
        report["ci"] == "identity bootstrap" and report["eer_ci"][0] <= report["eer"] <= report["eer_ci"][1]
    )


def test_identification_by_gallery_size_falls_as_the_gallery_grows():
    import torch

    from ai_server.research import data
    from ai_server.research.evaluate import identify, one_shot_ranks

    people = data.celeba_ext_validation()
    labels = torch.tensor(people.labels)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(len(people.classes), 16, generator=g)
    vectors = torch.nn.functional.normalize(
        centres[labels] + torch.randn(len(labels), 16, generator=g), dim=1
    )
    report = identify({"embedding": vectors}, people, seed=0, n_boot=50, identity_ci=True)["embedding"]
    curve = report["top1_by_gallery_size"]
    assert list(curve) == ["10", "30", "100", "300", "1000"]
    values = list(curve.values())
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert curve["1000"] == pytest.approx(report["top1"])  # the whole gallery is the full search
    # a gallery of one person: every query of that person finds them first
    assert (one_shot_ranks(vectors, people, 0, np.array([7])) == 0).all()
