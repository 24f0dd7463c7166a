"""Reading what the earlier stages wrote: probe and output-change CSVs, fine-tuning cells, their predictions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..io import read_json, read_tsv


def collect_probe(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The CSVs (probe or output change), one after another."""
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


RUN_COLUMNS = ["model", "task", "seed", "score", "diverged", "degenerate", "train_seconds",
               "train_tokens", "total_flos", "peak_gpu_memory_mb", "device", "path", "predictions"]


def collect_finetune(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per fine-tuning cell (``metrics.json``): its task score (a fraction, NaN where null), flags, cost.

    ``diverged``: non-finite loss or logits. ``degenerate``: constant predictions without diverging; a run whose
    score is null without diverging is one too (only constant predictions leave a metric undefined), which also
    covers files written before finetune recorded the flag (they had ``constant_predictions``, classification only).
    """
    rows = []
    for p in paths:
        m = read_json(p)
        diverged = bool(m.get("diverged", False))
        degenerate = bool(m.get("degenerate", m.get("constant_predictions", False)))
        rows.append({"model": m["model"], "task": m["task"], "seed": int(m["seed"]),
                     "score": math.nan if m["main_score"] is None else m["main_score"],
                     "diverged": diverged,
                     "degenerate": not diverged and (degenerate or m["main_score"] is None),
                     "train_seconds": m.get("train_seconds"), "train_tokens": m.get("train_tokens"),
                     "total_flos": m.get("total_flos"), "peak_gpu_memory_mb": m.get("peak_gpu_memory_mb"),
                     "device": m.get("device"), "path": str(p),
                     "predictions": str(Path(p).with_name("predictions.tsv"))})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def read_predictions(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{split: (idx, labels, predictions)}`` of one cell's predictions.tsv, sorted by idx."""
    df = read_tsv(path, text_columns=("split",))
    out = {}
    for split, g in df.groupby("split", sort=False):
        g = g.sort_values("idx")
        out[split] = (g["idx"].to_numpy(), g["label"].to_numpy(), g["prediction"].to_numpy())
    return out
