"""How likely a candidate of a search is the person in the photo: the number the service shows.

A pair calibration answers "are these two photos the same person?" with a 50/50 prior. A search asks "is
candidate r the person I am looking for?", which also depends on how many people are enrolled and on the
ranking, so the probability is a logistic function of the candidate's similarity, its gap to the next
candidate, its gap to the top one and the log of the gallery size; the top candidate has its own fit.
`research.calibration.identification_calibration` fits it on validation searches; the service applies it.
Pure numpy: the service uses it without the research code.
"""

import numpy as np

CANDIDATE_FEATURES = ("similarity", "gap_to_next", "gap_to_top", "log_gallery_size")
TOP_K = 5  # the ranks it was fitted on


def candidate_features(similarities, gallery_size: int, k: int | None = None) -> np.ndarray:
    """A search's per-person similarities, best first (ideally one more than the candidates wanted, for
    the last one's gap) -> (k, 4) features of its first k candidates. A missing next counts as 0."""
    s = np.asarray(similarities, dtype=np.float64)
    k = len(s) if k is None else min(k, len(s))
    top = s[:k]
    following = np.r_[s[1:], 0.0][:k]
    return np.stack([top, top - following, s[0] - top, np.full(k, np.log(max(gallery_size, 1)))], axis=1)


def candidate_probability(features: np.ndarray, ranks, model: dict, prior: float | None = None) -> np.ndarray:
    """P(candidate is the searched person) from `candidate_features` and its rank (1 = top). `prior`, the
    share of searches whose person is enrolled, moves the fitted `model["prior_enrolled"]` by Bayes' rule
    on the odds."""
    features, top = np.asarray(features), np.asarray(ranks) == 1
    logit = np.where(
        top,
        features @ np.asarray(model["top1"]["coef"]) + model["top1"]["intercept"],
        features @ np.asarray(model["rest"]["coef"]) + model["rest"]["intercept"],
    )
    if prior is not None:
        fitted = model["prior_enrolled"]
        logit = logit + np.log(prior / (1 - prior)) - np.log(fitted / (1 - fitted))
    return 1.0 / (1.0 + np.exp(-logit))
