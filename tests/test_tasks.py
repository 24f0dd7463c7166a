"""GLUE metrics against hand computations from their definitions."""

import math

import numpy as np
import pytest
from layerlens import tasks


def test_accuracy_and_f1_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    preds = [1, 0, 1, 0, 1, 0, 1, 1]
    # tp=3 (idx 0,2,6), fn=1 (idx 1), fp=2 (idx 4,7), tn=2
    m = tasks.compute_metrics("mrpc", {"validation": (labels, preds)})
    assert m["accuracy"] == pytest.approx(5 / 8)
    precision, recall = 3 / 5, 3 / 4
    assert m["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert tasks.task_score("mrpc", m) == pytest.approx((5 / 8 + m["f1"]) / 2)


def test_matthews_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0, 1, 1]
    preds = [1, 0, 1, 0, 1, 0, 1, 1, 1, 0]
    tp = sum(p == 1 and y == 1 for p, y in zip(preds, labels))
    tn = sum(p == 0 and y == 0 for p, y in zip(preds, labels))
    fp = sum(p == 1 and y == 0 for p, y in zip(preds, labels))
    fn = sum(p == 0 and y == 1 for p, y in zip(preds, labels))
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    m = tasks.compute_metrics("cola", {"validation": (labels, preds)})
    assert m == {"matthews_correlation": pytest.approx(mcc)}
    assert tasks.task_score("cola", m) == pytest.approx(mcc)


def test_pearson_spearman_by_hand():
    labels = np.array([0.0, 1.2, 2.5, 3.1, 4.8, 5.0])
    preds = np.array([0.3, 1.0, 2.9, 2.8, 4.1, 4.9])
    lc, pc = labels - labels.mean(), preds - preds.mean()
    pearson = (lc * pc).sum() / math.sqrt((lc ** 2).sum() * (pc ** 2).sum())
    # no ties: Spearman = 1 - 6 sum d^2 / (n (n^2 - 1))
    rank = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    d = rank(labels) - rank(preds)
    n = len(labels)
    spearman = 1 - 6 * (d ** 2).sum() / (n * (n ** 2 - 1))
    m = tasks.compute_metrics("stsb", {"validation": (labels, preds)})
    assert m["pearson"] == pytest.approx(pearson)
    assert m["spearmanr"] == pytest.approx(spearman)
    assert tasks.task_score("stsb", m) == pytest.approx((pearson + spearman) / 2)


def test_mnli_matched_and_mismatched():
    m = tasks.compute_metrics("mnli", {"validation_matched": ([0, 1, 2, 2], [0, 1, 2, 0]),
                                       "validation_mismatched": ([2, 2], [2, 1])})
    assert m == {"accuracy_matched": 0.75, "accuracy_mismatched": 0.5}
    assert tasks.task_score("mnli", m) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="validation_mismatched"):
        tasks.compute_metrics("mnli", {"validation_matched": ([0], [0])})


@pytest.mark.parametrize("task", ["sst2", "qnli", "rte", "wnli"])
def test_accuracy_tasks(task):
    m = tasks.compute_metrics(task, {"validation": ([0, 1, 1, 0], [0, 1, 0, 0])})
    assert m == {"accuracy": 0.75}


def test_constant_regression_predictions_are_nan_not_an_error():
    m = tasks.compute_metrics("stsb", {"validation": ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])})
    assert math.isnan(m["pearson"]) and math.isnan(m["spearmanr"])


def test_task_specs_match_the_hub():
    assert tasks.get_task("rte").label_names == ("entailment", "not_entailment")
    assert tasks.get_task("wnli").label_names == ("not_entailment", "entailment")
    assert tasks.get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert tasks.get_task("stsb").is_regression and tasks.get_task("stsb").num_labels == 1
    assert tasks.get_task("qqp").text_columns == ("question1", "question2")
    with pytest.raises(KeyError, match="known"):
        tasks.get_task("squad")


def test_mnli_batched_score_by_hand():
    """The bootstrap's MNLI score: the mean of matched and mismatched accuracy, per resample."""
    y_m, p_m = np.array([[0, 1, 2, 2], [0, 0, 0, 0]]), np.array([[0, 1, 2, 0], [0, 0, 0, 0]])
    y_mm, p_mm = np.array([[2, 2], [1, 2]]), np.array([[2, 1], [0, 0]])
    got = tasks.batched_task_score("mnli", {"validation_matched": (y_m, p_m), "validation_mismatched": (y_mm, p_mm)})
    np.testing.assert_allclose(got, [(3 / 4 + 1 / 2) / 2, (1 + 0) / 2])


def _layout(**kw):
    base = {"files": {"train": "X/train.tsv", "validation": "X/dev.tsv"}, "columns": {"text": "t", "label": "y"},
            "labels": "name"}
    return tasks.TsvLayout(**{**base, **kw})


@pytest.mark.parametrize("change, words", [
    ({"tsv": _layout(files={"train": "X/train.tsv"})}, "tsv.files has splits ['train']"),
    ({"tsv": _layout(columns={"text": "t"})}, "tsv.columns maps ['text']"),
    ({"tsv": _layout(labels="score")}, "the task is classification"),
    ({"label_names": None}, "regression (use 'score')"),
    ({"tsv": _layout(short_rows="ignore")}, "tsv.short_rows must be one of"),
    ({"tsv": _layout(header=False)}, "tsv.columns must be positions"),
    ({"tsv": _layout(header=False, columns={"text": 3, "label": 1}, width=3)}, "needs tsv.width, larger than"),
    ({"metrics": (tasks.Metric("acc", "accuracy", "test"),)}, "metric acc: kind must be one of"),
    ({"metrics": (tasks.Metric("acc", "auroc"),)}, "metric acc: kind must be one of"),
    ({"metrics": (tasks.Metric("acc", "accuracy"), tasks.Metric("acc", "f1"))}, "names must be given and unique"),
])
def test_a_task_spec_that_contradicts_itself_is_refused(change, words):
    spec = {"name": "x", "text_columns": ("text",), "label_names": ("no", "yes"),
            "metrics": (tasks.Metric("accuracy", "accuracy"),), "tsv": _layout()}
    tasks.TaskSpec(**spec)  # the unchanged spec is consistent
    with pytest.raises(ValueError, match="GLUE task 'x': ") as err:
        tasks.TaskSpec(**{**spec, **change})
    assert words in str(err.value)
