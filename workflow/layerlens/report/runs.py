"""The tidy table of every fine-tuning run: ``results/report/runs.parquet`` and ``runs.csv``, one row per
model x task x seed, the table researchers pass on and the one every GLUE table, test and cost figure of the
report is computed from.

Columns: those of :func:`.collect.collect_finetune` (model, task, seed, score, diverged, degenerate, cost, the
paths of the run's files), then

- the model: ``base``, ``num_layers``, ``layer_map`` (the source layer of each layer, e.g. ``0-2,2-5``; the
  identity for a base);
- every GLUE metric of the task registry (one column each, NaN on the tasks that do not report it),
  ``main_metric``, ``n_train``, ``n_eval``, ``train_loss``, ``global_steps``;
- cost: the job's wall time and peak resident memory (``wall_s``, ``max_rss_mb``, from Snakemake's
  ``benchmark:`` file), training seconds, tokens, tokens/s, FLOPs, peak GPU memory, device, precision, attention;
- the recipe: ``hp_<key>`` for each fine-tuning hyperparameter;
- provenance: ``torch``, ``transformers``, ``datasets``, ``python``, ``layerlens`` versions and
  ``workflow_commit`` / ``workflow_dirty`` (:mod:`layerlens.provenance`), as the run recorded them.

The columns are the same whatever tasks ran (every metric of the registry), so tables of several experiments
concatenate. Both files load with ``pandas.read_parquet`` / ``read_csv`` and ``datasets.load_dataset("parquet",
data_files=...)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import atomic_path, read_json
from ..tasks import TASKS
from .collect import RUN_COLUMNS, collect_finetune
from .tables import write_csv

#: every metric name of the task registry, in registry order
METRIC_COLUMNS = list(dict.fromkeys(m for spec in TASKS.values() for m in spec.metric_names))
VERSION_COLUMNS = ["python", "layerlens", "torch", "transformers", "datasets"]
MODEL_COLUMNS = ["base", "num_layers", "layer_map"]
RUN_DETAIL = ["main_metric", "n_train", "n_eval", "train_loss", "global_steps"]
COST_COLUMNS = ["wall_s", "max_rss_mb", "train_tokens_per_second", "precision", "attention"]
PROVENANCE_COLUMNS = VERSION_COLUMNS + ["workflow_commit", "workflow_dirty"]


def read_benchmark(path: str | Path) -> dict:
    """One Snakemake ``benchmark:`` file: wall seconds and peak resident memory (MB) of the job."""
    df = pd.read_csv(path, sep="\t")
    return {"wall_s": float(df["s"].iloc[-1]), "max_rss_mb": float(pd.to_numeric(df["max_rss"], "coerce").iloc[-1])}


def runs_table(metrics: Sequence[str | Path], benchmarks: Sequence[str | Path] | None = None) -> pd.DataFrame:
    """The tidy table of the runs whose ``metrics.json`` files are given; ``benchmarks``: each run's Snakemake
    benchmark file, in the same order (or None: no wall time or memory)."""
    base = collect_finetune(metrics)
    extra = []
    for i, path in enumerate(metrics):
        m = read_json(path)
        row = {"base": m.get("base", m["model"]), "num_layers": m.get("num_layers"), "layer_map": m.get("layer_map")}
        row.update({k: m.get(k, math.nan) for k in METRIC_COLUMNS})
        n_eval = m.get("n_eval")
        row.update(main_metric=m.get("main_metric"), n_train=m.get("n_train"),
                   n_eval=sum(n_eval.values()) if isinstance(n_eval, dict) else n_eval,
                   train_loss=m.get("train_loss"), global_steps=m.get("global_steps"))
        bench = read_benchmark(benchmarks[i]) if benchmarks else {"wall_s": math.nan, "max_rss_mb": math.nan}
        row.update(bench, train_tokens_per_second=m.get("train_tokens_per_second"), precision=m.get("precision"),
                   attention=m.get("attention"))
        row.update({f"hp_{k}": v for k, v in sorted((m.get("hyperparameters") or {}).items())
                    if not isinstance(v, (dict, list))})
        versions = m.get("versions") or {}
        row.update({k: versions.get(k) for k in VERSION_COLUMNS})
        row.update(workflow_commit=m.get("workflow_commit"), workflow_dirty=m.get("workflow_dirty"))
        extra.append(row)
    table = pd.concat([base, pd.DataFrame(extra, index=base.index)], axis=1)
    hp = sorted(c for c in table.columns if c.startswith("hp_"))
    order = (RUN_COLUMNS[:3] + MODEL_COLUMNS + RUN_COLUMNS[3:6] + METRIC_COLUMNS + RUN_DETAIL + RUN_COLUMNS[6:11]
             + COST_COLUMNS + hp + PROVENANCE_COLUMNS + RUN_COLUMNS[11:])
    table = table.reindex(columns=order)
    for col in METRIC_COLUMNS + ["score", "train_seconds", "train_tokens", "total_flos", "peak_gpu_memory_mb",
                                 "train_loss", "wall_s", "max_rss_mb", "train_tokens_per_second"]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("float64")
    for col in ("num_layers", "n_train", "n_eval", "global_steps"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    for col in hp:  # one type per column: a hyperparameter null in one run and numeric in another is a float
        if table[col].map(lambda v: v is None or isinstance(v, (int, float)) and not isinstance(v, bool)).all():
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def write_runs(table: pd.DataFrame, out_parquet, out_csv) -> None:
    with atomic_path(out_parquet, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    write_csv(table, out_csv)


def read_runs(path: str | Path) -> pd.DataFrame:
    """The tidy table as written (parquet or CSV)."""
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
