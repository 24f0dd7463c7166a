"""GLUE's metrics, on one dev split (scikit-learn and scipy, exactly as GLUE defines them; no ``evaluate.load``,
which needs the network) and batched, for the bootstrap (many resamples at once, numpy only).

The batched functions take labels and predictions of shape (resamples, examples) and return one value per
resample; they agree with the one-split versions (tests/test_stats.py checks it). A :class:`layerlens.tasks.Metric`
names its function by its key in :data:`METRICS` / :data:`BATCHED`.
"""

from __future__ import annotations

import numpy as np

# scikit-learn and scipy are imported where they are used: the Snakefile imports the task registry (and so this
# module) to validate the config, and every job parses the Snakefile, so its import time counts in every job.



def accuracy(labels, preds) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, preds))


def f1_positive(labels, preds) -> float:
    """F1 of the positive class (label 1), as GLUE reports for MRPC and QQP."""
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0.0))


def matthews(labels, preds) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(labels, preds))


def pearson(labels, preds) -> float:
    from scipy.stats import pearsonr

    labels, preds = np.asarray(labels, float), np.asarray(preds, float)
    if np.std(preds) == 0 or np.std(labels) == 0:
        return float("nan")
    return float(pearsonr(preds, labels)[0])


def spearman(labels, preds) -> float:
    from scipy.stats import spearmanr

    labels, preds = np.asarray(labels, float), np.asarray(preds, float)
    if np.std(preds) == 0 or np.std(labels) == 0:
        return float("nan")
    return float(spearmanr(preds, labels)[0])


#: the metric functions a :class:`Metric` names by ``kind``
METRICS = {
    "accuracy": accuracy,
    "f1": f1_positive,
    "matthews_correlation": matthews,
    "pearson": pearson,
    "spearmanr": spearman,
}




def _counts(y, p):
    tp = np.sum((p == 1) & (y == 1), axis=-1).astype(float)
    tn = np.sum((p != 1) & (y != 1), axis=-1).astype(float)
    fp = np.sum((p == 1) & (y != 1), axis=-1).astype(float)
    fn = np.sum((p != 1) & (y == 1), axis=-1).astype(float)
    return tp, tn, fp, fn


def batched_accuracy(y, p):
    return np.mean(y == p, axis=-1)


def batched_f1(y, p):
    tp, _, fp, fn = _counts(y, p)
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def batched_matthews(y, p):
    tp, tn, fp, fn = _counts(y, p)
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.divide(tp * tn - fp * fn, den, out=np.zeros_like(den), where=den > 0)


def batched_pearson(y, p):
    y = y - y.mean(axis=-1, keepdims=True)
    p = p - p.mean(axis=-1, keepdims=True)
    den = np.sqrt((y * y).sum(-1) * (p * p).sum(-1))
    return np.divide((y * p).sum(-1), den, out=np.full(den.shape, np.nan), where=den > 0)


def batched_spearman(y, p):
    from scipy.stats import rankdata

    return batched_pearson(rankdata(y, axis=-1), rankdata(p, axis=-1))


#: the batched version of each function in :data:`METRICS`
BATCHED = {"accuracy": batched_accuracy, "f1": batched_f1, "matthews_correlation": batched_matthews,
            "pearson": batched_pearson, "spearmanr": batched_spearman}
