"""Similarity -> probability of the same person, and the "no reliable match" threshold.

A logistic curve p = sigmoid(a * cosine + b) is fitted on verification pairs of identities never trained
on; two numbers are all the service needs to turn a similarity into a calibrated confidence.
"""

import numpy as np


def fit_logistic(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression  # research dependency, not a serving one

    model = LogisticRegression(C=1e6).fit(np.asarray(scores).reshape(-1, 1), np.asarray(same, dtype=int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def probability(scores: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(a * np.asarray(scores) + b)))


def expected_calibration_error(prob: np.ndarray, same: np.ndarray, bins: int = 10) -> float:
    """Mean |observed frequency - predicted probability| over equal-width bins, weighted by count."""
    prob, same = np.asarray(prob), np.asarray(same, dtype=float)
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        in_bin = which == k
        if in_bin.any():
            total += in_bin.sum() * abs(same[in_bin].mean() - prob[in_bin].mean())
    return float(total / len(prob))


def threshold_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    """The lowest similarity threshold at which at most `far` of the different-person pairs pass."""
    negatives = np.sort(np.asarray(scores)[~np.asarray(same, dtype=bool)])[::-1]
    allowed = int(np.floor(far * len(negatives)))
    return float(np.nextafter(negatives[allowed], np.inf))


def calibration_report(scores: np.ndarray, same: np.ndarray, fold: np.ndarray, far: float = 1e-3) -> dict:
    """Fit on folds 0-4, measure reliability on folds 5-9, then refit on all pairs for serving."""
    fit = fold < 5
    a, b = fit_logistic(scores[fit], same[fit])
    held_prob = probability(scores[~fit], a, b)
    a_all, b_all = fit_logistic(scores, same)
    threshold = threshold_at_far(scores, same, far)
    return {
        "method": "logistic",
        "ece_heldout_folds": expected_calibration_error(held_prob, same[~fit]),
        "ece_uncalibrated_cosine": expected_calibration_error(np.clip(scores[~fit], 0, 1), same[~fit]),
        "a": a_all,
        "b": b_all,
        "no_match_threshold": threshold,
        "no_match_far": far,
        "tar_at_threshold": float(np.mean(scores[same] >= threshold)),
    }
