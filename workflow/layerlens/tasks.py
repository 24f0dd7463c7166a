"""GLUE tasks: the one definition of each task, and its metrics.

A task is one :class:`TaskSpec` in :data:`TASKS`, and nothing else in the pipeline lists tasks: the config
schema's task names (:func:`layerlens.config.schema`), the files a TSV folder must hold
(:func:`layerlens.config.validate`), the reading of those files (:mod:`layerlens.download`), fine-tuning and the
report all read it from here. A spec holds

- the Hub's form (``nyu-mll/glue``): text columns, label names (their order gives the label ids), dev splits;
- the metrics, each computed on one dev split, and with them the task score;
- :class:`TsvLayout`: where and how the classic ``glue_data`` folder (GLUE's ``download_glue_data.py``) writes
  the task: a file per split, header or not, which column holds what, how labels are written, and what a row
  with too few fields gets.

Adding a task is one entry in :data:`TASKS` (its ``__post_init__`` checks that the entry is consistent) plus its
files in ``tests/helpers.py:make_glue_tsv``.

The metric functions live in :mod:`layerlens.metrics`. The task score ("main score") is the unweighted mean
of the task's metrics, which is how the GLUE benchmark scores a multi-metric task (MRPC, QQP: F1 and accuracy;
STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy) before averaging over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .metrics import BATCHED, METRICS

# --- the task registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One reported metric: its key in ``metrics.json``, its function (a key of :data:`METRICS`) and the dev
    split it is computed on."""

    name: str
    kind: str
    split: str = "validation"


#: how a TSV file writes labels: the Hub's label names; ids 0 .. n-1 (the names are accepted too); a number
LABEL_FORMATS = ("name", "id", "score")
#: what a row with fewer fields than the file's width gets (see :class:`TsvLayout`)
SHORT_ROWS = ("error", "skip")


@dataclass(frozen=True)
class TsvLayout:
    """Where and how the classic ``glue_data`` folder writes a task.

    ``files``
        split -> file, relative to the ``glue_data`` folder.
    ``columns``
        each Hub column (the text columns and ``label``) -> the header's name for it or, in a file without a
        header, its 0-based position.
    ``labels``
        how the label column is written: one of :data:`LABEL_FORMATS`.
    ``header``, ``width``
        whether the first line is a header; a file without one gives its number of fields per row here (with
        one, the header's length is the width, so MNLI's dev files, with five annotator labels where train.tsv
        has one, need nothing more).
    ``short_rows``
        what a row with fewer fields than the width gets. ``error``: the file is damaged, and the reader stops
        with a message naming the file and the line. ``skip``: the published file is known to hold such rows;
        each is skipped and its line number recorded in the download's manifest (``skipped_rows``), never
        silently. Extra fields are ignored either way.
    """

    files: Mapping[str, str]
    columns: Mapping[str, str | int]
    labels: str
    header: bool = True
    width: int | None = None
    short_rows: str = "error"


@dataclass(frozen=True)
class TaskSpec:
    """One GLUE task (see the module docstring). ``label_names`` is None for regression (STS-B), whose labels
    must lie in ``label_range``."""

    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None
    metrics: tuple[Metric, ...]
    tsv: TsvLayout
    dev_splits: tuple[str, ...] = ("validation",)
    label_range: tuple[float, float] | None = None

    def __post_init__(self):
        problems = []
        if self.is_regression != (self.tsv.labels == "score"):
            problems.append(f"tsv.labels is {self.tsv.labels!r}, but the task is "
                            + ("regression (use 'score')" if self.is_regression else "classification"))
        if self.tsv.labels not in LABEL_FORMATS:
            problems.append(f"tsv.labels must be one of {LABEL_FORMATS}")
        if self.tsv.short_rows not in SHORT_ROWS:
            problems.append(f"tsv.short_rows must be one of {SHORT_ROWS}")
        if set(self.tsv.files) != set(self.splits):
            problems.append(f"tsv.files has splits {sorted(self.tsv.files)}, the task {sorted(self.splits)}")
        if set(self.tsv.columns) != set(self.text_columns) | {"label"}:
            problems.append(f"tsv.columns maps {sorted(self.tsv.columns)}, expected the text columns and 'label'")
        position = int if not self.tsv.header else str
        if any(not isinstance(c, position) for c in self.tsv.columns.values()):
            problems.append("tsv.columns must be " + ("header names" if self.tsv.header else "positions"))
        if not self.tsv.header and not (self.tsv.width and all(c < self.tsv.width for c in self.tsv.columns.values()
                                                                 if isinstance(c, int))):
            problems.append("a file without a header needs tsv.width, larger than every column position")
        for m in self.metrics:
            if m.kind not in METRICS or m.split not in self.dev_splits:
                problems.append(f"metric {m.name}: kind must be one of {sorted(METRICS)}, split one of "
                                f"{list(self.dev_splits)}")
        if not self.metrics or len(set(self.metric_names)) != len(self.metrics):
            problems.append("metric names must be given and unique")
        if problems:
            raise ValueError(f"GLUE task {self.name!r}: " + "; ".join(problems))

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",) + self.dev_splits

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)


def _on_dev(*kinds: str) -> tuple[Metric, ...]:
    """Metrics named by their kind, on the one dev split ``validation``."""
    return tuple(Metric(k, k) for k in kinds)


def _train_dev(folder: str) -> dict[str, str]:
    """The usual files: ``{folder}/train.tsv`` and ``{folder}/dev.tsv``."""
    return {"train": f"{folder}/train.tsv", "validation": f"{folder}/dev.tsv"}


TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    # CoLA: no header; fields: source, label, the original judgment ('*' or empty), sentence
    TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), _on_dev("matthews_correlation"),
             TsvLayout(_train_dev("CoLA"), {"sentence": 3, "label": 1}, "id", header=False, width=4)),
    TaskSpec("sst2", ("sentence",), ("negative", "positive"), _on_dev("accuracy"),
             TsvLayout(_train_dev("SST-2"), {"sentence": "sentence", "label": "label"}, "id")),
    # MRPC: the header starts with a UTF-8 byte order mark, which the reader drops
    TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), _on_dev("f1", "accuracy"),
             TsvLayout(_train_dev("MRPC"), {"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"},
                       "id")),
    TaskSpec("stsb", ("sentence1", "sentence2"), None, _on_dev("pearson", "spearmanr"),
             TsvLayout(_train_dev("STS-B"), {"sentence1": "sentence1", "sentence2": "sentence2", "label": "score"},
                       "score"),
             label_range=(0.0, 5.0)),
    # QQP: train.tsv holds rows broken in two by a line break inside a question (e.g. its line 97,931 is a
    # question's tail, the other question and the label: 3 of the 6 fields; nyu-mll/GLUE-baselines#5). The Hub's
    # loader (nyu-mll/glue) drops such rows ("Filter out corrupted rows"), as transformers' QqpProcessor did.
    TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), _on_dev("f1", "accuracy"),
             TsvLayout(_train_dev("QQP"), {"question1": "question1", "question2": "question2",
                                           "label": "is_duplicate"}, "id", short_rows="skip")),
    # MNLI: two dev files; they have label1..label5 (annotators) where train.tsv has label1 only
    TaskSpec("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
             (Metric("accuracy_matched", "accuracy", "validation_matched"),
              Metric("accuracy_mismatched", "accuracy", "validation_mismatched")),
             TsvLayout({"train": "MNLI/train.tsv", "validation_matched": "MNLI/dev_matched.tsv",
                        "validation_mismatched": "MNLI/dev_mismatched.tsv"},
                       {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}, "name"),
             dev_splits=("validation_matched", "validation_mismatched")),
    TaskSpec("qnli", ("question", "sentence"), ("entailment", "not_entailment"), _on_dev("accuracy"),
             TsvLayout(_train_dev("QNLI"), {"question": "question", "sentence": "sentence", "label": "label"},
                       "name")),
    TaskSpec("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), _on_dev("accuracy"),
             TsvLayout(_train_dev("RTE"), {"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"},
                       "name")),
    TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), _on_dev("accuracy"),
             TsvLayout(_train_dev("WNLI"), {"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"},
                       "id")),
)}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown GLUE task {name!r}; known: {', '.join(TASKS)}") from None


def compute_metrics(task: str, split_outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Metrics of ``task`` from ``{dev split: (labels, predictions)}``.

    Predictions are class ids (classification) or scores (STS-B). Each metric is computed on its own dev split
    (MNLI: ``accuracy_matched`` and ``accuracy_mismatched``).
    """
    spec = get_task(task)
    missing = [s for s in spec.dev_splits if s not in split_outputs]
    if missing:
        raise ValueError(f"{task}: predictions for dev split(s) {missing} are missing")
    return {m.name: METRICS[m.kind](*split_outputs[m.split]) for m in spec.metrics}


def task_score(task: str, metrics: dict[str, float]) -> float:
    """The GLUE task score: the unweighted mean of the task's metrics."""
    spec = get_task(task)
    return float(np.mean([metrics[k] for k in spec.metric_names]))


def batched_task_score(task: str, outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The task score for each row of ``{dev split: (labels, predictions)}``, arrays (resamples, examples)."""
    return np.mean([BATCHED[m.kind](*outputs[m.split]) for m in get_task(task).metrics], axis=0)
