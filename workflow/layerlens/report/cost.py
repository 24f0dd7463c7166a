"""The cost table: per model x task, what a fine-tuning run cost, and for a variant what its extra compute bought.

Job wall time and peak resident memory come from each run's Snakemake ``benchmark:`` file; peak GPU memory,
training tokens and FLOPs from its ``metrics.json``. Points are GLUE points (task score x100, the GLUE summary's
means).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_text
from .tables import fmt, markdown, write_csv

FORMATS = {"wall_h_per_run": "{:.3f}", "peak_rss_gb": "{:.2f}", "peak_gpu_gb": "{:.2f}",
           "train_tokens_per_s": "{:,.0f}", "tflops_per_run": "{:.2f}", "extra_h_per_run": "{:+.3f}",
           "points_per_extra_hour": "{:+.1f}"}


def read_benchmark(path: str | Path) -> dict:
    """One Snakemake ``benchmark:`` file: wall seconds and peak resident memory (MB)."""
    df = pd.read_csv(path, sep="\t")
    return {"wall_s": float(df["s"].iloc[-1]), "max_rss_mb": float(pd.to_numeric(df["max_rss"], "coerce").iloc[-1])}


def cost_table(runs: pd.DataFrame, benchmarks: dict[tuple[str, str, int], str], summary: pd.DataFrame,
               bases: dict[str, str]) -> pd.DataFrame:
    """Per model x task: job wall time, peak memory, training throughput, FLOPs, device; for a variant, the
    extra compute-hours over its base and the points gained per extra compute-hour."""
    rows = []
    for (model, task), g in runs.groupby(["model", "task"], sort=False):
        bench = [read_benchmark(benchmarks[(model, task, int(s))]) for s in g["seed"]
                 if (model, task, int(s)) in benchmarks]
        tokens_per_s = (g["train_tokens"] / g["train_seconds"]).astype(float)
        rows.append({"model": model, "base": bases.get(model, model), "task": task, "runs": len(g),
                     "wall_h_per_run": np.mean([b["wall_s"] for b in bench]) / 3600 if bench else math.nan,
                     "peak_rss_gb": max((b["max_rss_mb"] for b in bench), default=math.nan) / 1024,
                     "peak_gpu_gb": pd.to_numeric(g["peak_gpu_memory_mb"], "coerce").max() / 1024,
                     "train_tokens_per_s": float(tokens_per_s.mean()),
                     "tflops_per_run": float(pd.to_numeric(g["total_flos"], "coerce").mean()) / 1e12,
                     "device": ", ".join(sorted(set(map(str, g["device"].dropna())))) or "n/a"})
    cost = pd.DataFrame(rows)
    if cost.empty:
        return cost
    key = cost.set_index(["model", "task"])
    means = summary.set_index(["model", "task"])["mean"]
    extra, per_hour = [], []
    for r in cost.itertuples():
        if r.model == r.base or (r.base, r.task) not in key.index:
            extra.append(math.nan)
            per_hour.append(math.nan)
            continue
        dh = r.wall_h_per_run - key.loc[(r.base, r.task), "wall_h_per_run"]
        gain = means.get((r.model, r.task), math.nan) - means.get((r.base, r.task), math.nan)
        extra.append(dh)
        per_hour.append(gain / dh if dh > 0 else math.nan)
    cost["extra_h_per_run"] = extra
    cost["points_per_extra_hour"] = per_hour
    return cost


def write_cost_report(cost: pd.DataFrame, out_csv, out_md) -> None:
    write_csv(cost, out_csv)
    show = cost.copy()
    for col, spec in FORMATS.items():
        if col in show:
            show[col] = show[col].map(lambda v, s=spec: fmt(v, s))
    lines = ["# Cost", "",
             "Per fine-tuning run (mean over seeds): the job's wall time and peak resident memory (Snakemake "
             "`benchmark:`), peak GPU memory, training tokens per second, the Trainer's FLOP count, the device. For "
             "a variant: the extra hours per run over its base, and the points (x100) gained per extra hour. Hours "
             "are job hours on the device shown: GPU-hours on a one-GPU job.", "",
             markdown(show, index=False), ""]
    write_text(out_md, "\n".join(lines))
