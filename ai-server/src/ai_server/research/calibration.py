"""Similarity -> probability of the same person, and the "no reliable match" threshold.

A logistic curve p = sigmoid(a * cosine + b) is fitted on verification pairs of identities never trained
on; two numbers are all the service needs to turn a similarity into a calibrated confidence.
"""

import numpy as np

from ..core.confidence import CANDIDATE_FEATURES, TOP_K, candidate_features, candidate_probability


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


# ---- Identification: how likely a candidate of a search is the person in the photo ----
# The pair calibration above answers "are these two photos the same person?" with a 50/50 prior. A search
# asks "is candidate r the person I am looking for?", which depends on how many people are enrolled and on
# the ranking. Fitted on simulated one-shot searches over validation identities: galleries of several sizes
# drawn from one half of the identities, queried by enrolled and by not enrolled people, checked on searches
# built the same way from the other half.
GALLERY_SIZES = (1, 3, 10, 30, 100, 300)


def simulated_searches(
    vectors: np.ndarray, labels: np.ndarray, identities: np.ndarray, seed: int, people_per_size: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Searches over galleries drawn from `identities` (each enrolled with one random image), queried by
    every other image of the enrolled people and as many images of people not enrolled (so half the
    searches have their person in the gallery); small galleries are drawn more often, so that every size
    has about `people_per_size` enrolled people in all. Returns per candidate row: features, whether it is
    the searched person, its rank (1 = top) and the gallery size."""
    rng = np.random.default_rng(seed)
    rows, right, ranks, sizes = [], [], [], []
    by_identity = {y: np.flatnonzero(labels == y) for y in identities}
    for n in GALLERY_SIZES:
        for _ in range(max(1, round(people_per_size / n)) if n < len(identities) // 2 else 1):
            enrolled = rng.choice(identities, min(n, len(identities) // 2), replace=False)
            outside = np.setdiff1d(identities, enrolled)
            faces = np.array([rng.choice(by_identity[y]) for y in enrolled])
            positives = np.concatenate([np.setdiff1d(by_identity[y], faces) for y in enrolled])
            pool = np.concatenate([by_identity[y] for y in outside])
            negatives = rng.choice(pool, min(len(pool), len(positives)), replace=False)
            queries = np.r_[positives, negatives]
            sims = vectors[queries] @ vectors[faces].T
            order = np.argsort(-sims, axis=1)[:, : TOP_K + 1]
            for i, (q, top) in enumerate(zip(queries, order, strict=True)):
                features = candidate_features(sims[i, top], len(faces), TOP_K)
                rows.append(features)
                right.append(enrolled[top[: len(features)]] == labels[q])
                ranks.append(np.arange(1, len(features) + 1))
                sizes.append(np.full(len(features), len(faces)))
    return np.concatenate(rows), np.concatenate(right), np.concatenate(ranks), np.concatenate(sizes)


def reliability(prob: np.ndarray, outcome: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width probability bin: how many candidates, their mean probability and how often right."""
    which = np.minimum((np.asarray(prob) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "n": int(inside.sum()),
                    "mean_probability": float(prob[inside].mean()),
                    "fraction_right": float(outcome[inside].mean()),
                }
            )
    return out


def identification_calibration(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """Fit the candidate probability on half of the identities, report its reliability on the other half
    (top-1 candidates, all top-5 candidates, and top-1 per gallery size), then refit on all for serving."""
    from sklearn.linear_model import LogisticRegression

    people = np.unique(labels)
    halves = np.random.default_rng(seed).permutation(people)
    fit_ids, test_ids = np.sort(halves[: len(people) // 2]), np.sort(halves[len(people) // 2 :])

    def fit(x: np.ndarray, y: np.ndarray, rank: np.ndarray) -> dict:
        def logistic(rows: np.ndarray) -> dict:
            model = LogisticRegression(C=1e4, max_iter=2000).fit(x[rows], y[rows])
            return {"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}

        return {"top1": logistic(rank == 1), "rest": logistic(rank > 1)}

    x, y, rank, _ = simulated_searches(vectors, labels, fit_ids, seed)
    model = {**fit(x, y, rank), "features": list(CANDIDATE_FEATURES), "prior_enrolled": 0.5, "top_k": TOP_K}
    tx, ty, rank, size = simulated_searches(vectors, labels, test_ids, seed + 1)
    p = candidate_probability(tx, rank, model)
    top1 = rank == 1
    report = {
        "heldout_identities": len(test_ids),
        "heldout_candidates": int(len(ty)),
        "reliability_top1": reliability(p[top1], ty[top1]),
        "reliability_top5": reliability(p, ty),
        "ece_top1": expected_calibration_error(p[top1], ty[top1]),
        "ece_top5": expected_calibration_error(p, ty),
        "ece_top1_by_gallery_size": {
            str(n): expected_calibration_error(p[top1 & (size == n)], ty[top1 & (size == n)])
            for n in np.unique(size)
        },
    }
    ax, ay, arank, _ = simulated_searches(vectors, labels, people, seed + 2)
    return {**model, **fit(ax, ay, arank), "heldout": report}
