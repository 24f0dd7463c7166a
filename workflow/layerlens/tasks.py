"""GLUE tasks: columns, label ids, dev splits, metrics and the task score.

Column names and label ids are the Hugging Face Hub's (``nyu-mll/glue``); the classic TSV layout is mapped
onto them by :mod:`layerlens.download`. Metrics are computed locally with scikit-learn and scipy, exactly as
GLUE defines them (no ``evaluate.load``, which needs the network):

======  =========================================  ==============================================
task    metrics                                    task score (the GLUE benchmark's)
======  =========================================  ==============================================
cola    Matthews correlation                       matthews_correlation
sst2    accuracy                                   accuracy
mrpc    F1 (positive class), accuracy              mean of F1 and accuracy
stsb    Pearson, Spearman                          mean of Pearson and Spearman
qqp     F1 (positive class), accuracy              mean of F1 and accuracy
mnli    accuracy on matched and mismatched dev     mean of matched and mismatched accuracy
qnli    accuracy                                   accuracy
rte     accuracy                                   accuracy
wnli    accuracy                                   accuracy
======  =========================================  ==============================================

The task score ("main score") is the unweighted mean of the task's metrics, which is how the GLUE benchmark
scores a multi-metric task before averaging over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# scikit-learn and scipy are imported where they are used: the Snakefile imports this module to validate the
# config, and every job parses the Snakefile, so its import time counts in every job.


@dataclass(frozen=True)
class TaskSpec:
    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None  # None for regression (STS-B)
    dev_splits: tuple[str, ...]
    metric_names: tuple[str, ...]

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",) + self.dev_splits


TASKS: dict[str, TaskSpec] = {
    "cola": TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), ("validation",),
                     ("matthews_correlation",)),
    "sst2": TaskSpec("sst2", ("sentence",), ("negative", "positive"), ("validation",), ("accuracy",)),
    "mrpc": TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("validation",),
                     ("f1", "accuracy")),
    "stsb": TaskSpec("stsb", ("sentence1", "sentence2"), None, ("validation",), ("pearson", "spearmanr")),
    "qqp": TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), ("validation",),
                    ("f1", "accuracy")),
    "mnli": TaskSpec("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                     ("validation_matched", "validation_mismatched"),
                     ("accuracy_matched", "accuracy_mismatched")),
    "qnli": TaskSpec("qnli", ("question", "sentence"), ("entailment", "not_entailment"), ("validation",),
                     ("accuracy",)),
    "rte": TaskSpec("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), ("validation",),
                    ("accuracy",)),
    "wnli": TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), ("validation",),
                     ("accuracy",)),
}

TASK_NAMES = tuple(TASKS)


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown GLUE task {name!r}; known: {', '.join(TASK_NAMES)}") from None


# --- metrics ---------------------------------------------------------------------------------------------


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


_SPLIT_METRICS = {
    "accuracy": accuracy,
    "f1": f1_positive,
    "matthews_correlation": matthews,
    "pearson": pearson,
    "spearmanr": spearman,
}


def compute_metrics(task: str, split_outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Metrics of ``task`` from ``{dev split: (labels, predictions)}``.

    Predictions are class ids (classification) or scores (STS-B). MNLI's two dev splits give
    ``accuracy_matched`` and ``accuracy_mismatched``.
    """
    spec = get_task(task)
    missing = [s for s in spec.dev_splits if s not in split_outputs]
    if missing:
        raise ValueError(f"{task}: predictions for dev split(s) {missing} are missing")
    out: dict[str, float] = {}
    if task == "mnli":
        for split, key in zip(spec.dev_splits, spec.metric_names):
            labels, preds = split_outputs[split]
            out[key] = accuracy(labels, preds)
        return out
    labels, preds = split_outputs[spec.dev_splits[0]]
    for key in spec.metric_names:
        out[key] = _SPLIT_METRICS[key](labels, preds)
    return out


def task_score(task: str, metrics: dict[str, float]) -> float:
    """The GLUE task score: the unweighted mean of the task's metrics."""
    spec = get_task(task)
    return float(np.mean([metrics[k] for k in spec.metric_names]))


def main_metric_label(task: str) -> str:
    spec = get_task(task)
    if len(spec.metric_names) == 1:
        return spec.metric_names[0]
    return "mean(" + ", ".join(spec.metric_names) + ")"


# --- batched metrics (for the bootstrap: many resamples at once) -----------------------------------------
# Each takes labels and predictions of shape (resamples, examples) and returns one value per resample; they
# agree with the scikit-learn / scipy versions above (tests/test_tasks.py checks it).


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


_BATCHED = {"accuracy": batched_accuracy, "f1": batched_f1, "matthews_correlation": batched_matthews,
            "pearson": batched_pearson, "spearmanr": batched_spearman}


def batched_task_score(task: str, outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The task score for each row of ``{dev split: (labels, predictions)}``, arrays (resamples, examples)."""
    spec = get_task(task)
    if task == "mnli":
        return np.mean([batched_accuracy(*outputs[s]) for s in spec.dev_splits], axis=0)
    y, p = outputs[spec.dev_splits[0]]
    return np.mean([_BATCHED[k](y, p) for k in spec.metric_names], axis=0)
