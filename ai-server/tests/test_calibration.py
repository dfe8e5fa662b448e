import numpy as np
import pytest

from ai_server.research.calibration import (
    calibration_report,
    expected_calibration_error,
    fit_logistic,
    probability,
    threshold_at_far,
)


def _synthetic(n: int, a: float, b: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-0.2, 1.0, n)
    same = rng.random(n) < probability(scores, a, b)
    return scores, same


def test_logistic_fit_recovers_the_generating_curve():
    scores, same = _synthetic(20000, 8.0, -3.0)
    a, b = fit_logistic(scores, same)
    assert a == pytest.approx(8.0, rel=0.1) and b == pytest.approx(-3.0, rel=0.1)


def test_ece_tells_calibrated_from_overconfident():
    scores, same = _synthetic(20000, 8.0, -3.0)
    assert expected_calibration_error(probability(scores, 8.0, -3.0), same) < 0.02
    assert expected_calibration_error(probability(scores, 30.0, -8.0), same) > 0.05


def test_threshold_at_far():
    rng = np.random.default_rng(1)
    same = np.r_[np.ones(500, bool), np.zeros(3000, bool)]
    scores = np.r_[rng.normal(0.7, 0.1, 500), rng.normal(0.2, 0.1, 3000)]
    thr = threshold_at_far(scores, same, 1e-3)
    negatives = scores[~same]
    assert (negatives >= thr).sum() <= 3  # 0.1% of 3,000
    assert (negatives >= np.sort(negatives)[-4]).sum() == 4  # one step lower lets a 4th through


def test_report_fits_on_half_the_folds_and_checks_on_the_rest():
    scores, same = _synthetic(6000, 8.0, -3.0, seed=2)
    fold = np.repeat(np.arange(10), 600)
    report = calibration_report(scores, same, fold)
    assert report["ece_heldout_folds"] < 0.03
    assert 0 < report["tar_at_threshold"] < 1 and report["no_match_far"] == 1e-3


def test_search_probabilities_are_calibrated_on_held_out_identities_at_every_gallery_size():
    """Synthetic faces (identity centre + noise): the fitted probability that a candidate is the searched
    person must match how often it is, for top-1 candidates and per gallery size, on identities it never
    saw; and more people enrolled must lower the top-1 probability of the same similarity."""
    from ai_server.research.calibration import (
        candidate_features,
        candidate_probability,
        identification_calibration,
    )

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(600), 5)
    vectors = rng.normal(size=(600, 32))[labels] + rng.normal(size=(3000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    model = identification_calibration(vectors, labels, seed=0)
    held = model["heldout"]
    assert held["ece_top1"] < 0.03 and held["ece_top5"] < 0.02
    assert max(held["ece_top1_by_gallery_size"].values()) < 0.06
    for b in held["reliability_top1"]:
        if b["n"] >= 200:
            assert abs(b["fraction_right"] - b["mean_probability"]) < 0.08, b
    sims = np.array([0.55, 0.3, 0.28, 0.25, 0.2, 0.19])
    small, large = (
        candidate_probability(candidate_features(sims, n, 5), np.arange(1, 6), model)[0] for n in (3, 300)
    )
    assert small > large
    # a rarer enrolled person (prior 0.1 instead of 0.5) lowers every probability
    base = candidate_probability(candidate_features(sims, 30, 5), np.arange(1, 6), model)
    assert (
        candidate_probability(candidate_features(sims, 30, 5), np.arange(1, 6), model, prior=0.1) < base
    ).all()


def test_the_served_model_is_right_80_to_90_percent_of_the_time_when_it_shows_80_to_90_percent():
    """Issue 19's check on the shipped default, from its search calibration as the manifest carries it:
    of the held-out searches' top-1 candidates shown at 0.8-0.9, the fraction that were the person lies in
    0.8-0.9 within its 95% (Wilson) interval."""
    from scipy.stats import binomtest

    from ai_server.core.weights import load_manifest
    from ai_server.serving.settings import default_weights_dir

    manifest = load_manifest(default_weights_dir())
    calibration = manifest["models"][manifest["default"]]["calibration"]["embedding"]["identification"]
    band = next(b for b in calibration["heldout"]["reliability_top1"] if b["bin"] == [0.8, 0.9])
    assert band["n"] >= 30, "too few searches shown at 0.8-0.9 to check"
    right = round(band["fraction_right"] * band["n"])
    interval = binomtest(right, band["n"]).proportion_ci(confidence_level=0.95, method="wilson")
    assert interval.low <= 0.9 and interval.high >= 0.8, band
