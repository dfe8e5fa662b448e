"""Closed-set and verification metrics, vectorised so that bootstrap confidence intervals are cheap.

Cross-checked against scikit-learn in the tests; kept here because the bootstrap calls them thousands
of times and because verification needs the LFW 10-fold protocol, which scikit-learn does not have.
"""

import numpy as np
from scipy.stats import rankdata

FARS = (1e-2, 1e-3)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean F1 over every label present in y_true or y_pred (scikit-learn's `average="macro"`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = inverse[: len(y_true)], inverse[len(y_true) :]
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k)
    support = np.bincount(t, minlength=k)
    predicted = np.bincount(p, minlength=k)
    return float(np.mean(2 * tp / (support + predicted)))  # 2tp / (2tp + fp + fn)


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    same = np.asarray(same, dtype=bool)
    n_pos, n_neg = same.sum(), (~same).sum()
    ranks = rankdata(scores)
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false accept rate, true accept rate, thresholds), one point per distinct score, from (0, 0)."""
    same = np.asarray(same, dtype=bool)
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, y = np.asarray(scores)[order], same[order]
    last_of_value = np.r_[np.diff(s) != 0, True]
    tps = np.cumsum(y)[last_of_value]
    fps = np.cumsum(~y)[last_of_value]
    tpr = np.r_[0.0, tps / same.sum()]
    fpr = np.r_[0.0, fps / (~same).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_value]]


def eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: where the false accept rate equals the false reject rate (interpolated)."""
    fnr = 1.0 - tpr
    i = int(np.argmax(fpr >= fnr))
    if i == 0:
        return float(fpr[0])
    # linear interpolation between points i-1 and i of (fpr - fnr), which changes sign there
    d0, d1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    w = d0 / (d0 - d1)
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """True accept rate at the best threshold whose false accept rate does not exceed `far`."""
    return float(tpr[fpr <= far].max())


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, fold: np.ndarray) -> tuple[float, float]:
    """LFW protocol: per fold, the threshold that maximises accuracy on the other folds; mean and std."""
    scores, same = np.asarray(scores), np.asarray(same, dtype=bool)
    accs = []
    for f in np.unique(fold):
        test = fold == f
        thr = best_threshold(scores[~test], same[~test])
        accs.append(np.mean((scores[test] >= thr) == same[test]))
    return float(np.mean(accs)), float(np.std(accs))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (midway between neighbouring scores) with the highest accuracy for score >= thr."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order]
    # predicting "same" for s >= candidate j: correct = positives at or above + negatives below
    pos_above = np.r_[np.cumsum(y[::-1])[::-1], 0]
    neg_below = np.r_[0, np.cumsum(~y)]
    correct = pos_above + neg_below
    candidates = np.r_[s[0] - 1.0, (s[:-1] + s[1:]) / 2, s[-1] + 1.0]
    distinct = np.r_[True, s[1:] != s[:-1], True]  # a cut between equal scores is not a threshold
    correct = np.where(distinct, correct, -1)
    return float(candidates[int(np.argmax(correct))])


def bootstrap_ci(
    statistic, *arrays: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*arrays)`, resampling rows with replacement."""
    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    values = []
    for _ in range(n):
        idx = rng.integers(0, size, size)
        sample = [np.asarray(a)[idx] for a in arrays]
        if sample[-1].dtype == bool and (sample[-1].all() or not sample[-1].any()):
            continue  # a resample with one class only has no AUC
        values.append(statistic(*sample))
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def cluster_bootstrap_ci(
    statistic, clusters: np.ndarray, *arrays: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval that resamples whole clusters (identities) with replacement, each
    bringing all its rows: the rows of one identity are not independent, so resampling rows would make
    the interval too narrow."""
    rng = np.random.default_rng(seed)
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    members = np.split(np.argsort(cluster, kind="stable"), np.cumsum(np.bincount(cluster))[:-1])
    values = []
    for _ in range(n):
        idx = np.concatenate([members[c] for c in rng.integers(0, len(members), len(members))])
        sample = [np.asarray(a)[idx] for a in arrays]
        if sample[-1].dtype == bool and (sample[-1].all() or not sample[-1].any()):
            continue
        values.append(statistic(*sample))
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def closed_set_report(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000) -> dict:
    return {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci": list(bootstrap_ci(accuracy, y_true, y_pred, n=n_boot)),
        "f1": macro_f1(y_true, y_pred),
        "f1_ci": list(bootstrap_ci(macro_f1, y_true, y_pred, n=n_boot)),
    }


def verification_report(
    scores: np.ndarray,
    same: np.ndarray,
    fold: np.ndarray,
    n_boot: int = 1000,
    clusters: np.ndarray | None = None,
) -> dict:
    """AUC (with CI), EER, TAR at FAR 1e-2 and 1e-3, 10-fold accuracy and a thinned ROC for plots. With
    `clusters` (each pair's identity) the CIs resample identities, else pairs; TAR at 1e-3 gets one too."""
    fpr, tpr, _ = roc_curve(scores, same)
    acc, acc_std = kfold_accuracy(scores, same, fold)
    keep = np.unique(
        np.r_[np.searchsorted(fpr, np.logspace(-4, 0, 200)).clip(0, len(fpr) - 1), 0, len(fpr) - 1]
    )
    report = {
        "pairs": int(len(scores)),
        "auc": roc_auc(scores, same),
        "auc_ci": list(
            bootstrap_ci(roc_auc, scores, same, n=n_boot)
            if clusters is None
            else cluster_bootstrap_ci(roc_auc, clusters, scores, same, n=n_boot)
        ),
        "eer": eer(fpr, tpr),
        "accuracy_10fold": acc,
        "accuracy_10fold_std": acc_std,
        "roc": {"fpr": fpr[keep].round(6).tolist(), "tpr": tpr[keep].round(6).tolist()},
    }
    for far in FARS:
        report[f"tar_at_far_{far:g}"] = tar_at_far(fpr, tpr, far)
    if clusters is not None:
        report["ci"] = "identity bootstrap"
        report["eer_ci"] = list(cluster_bootstrap_ci(_eer_of, clusters, scores, same, n=n_boot))
        report["tar_at_far_0.001_ci"] = list(cluster_bootstrap_ci(_tar3_of, clusters, scores, same, n=n_boot))
    return report


def _eer_of(scores: np.ndarray, same: np.ndarray) -> float:
    return eer(*roc_curve(scores, same)[:2])


def _tar3_of(scores: np.ndarray, same: np.ndarray) -> float:
    return tar_at_far(*roc_curve(scores, same)[:2], 1e-3)
