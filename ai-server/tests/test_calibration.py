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
