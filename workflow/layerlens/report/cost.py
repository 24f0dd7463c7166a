"""The cost table: per model x task, what a fine-tuning run cost, and for a variant what its extra compute bought.

Computed from the tidy table of runs (:mod:`.runs`): job wall time and peak resident memory (each run's Snakemake
``benchmark:`` file), peak GPU memory, training tokens and FLOPs (its ``metrics.json``). Points are GLUE points
(task score x100, the GLUE summary's means).

**Extra time is shown only where it can be measured.** A variant's extra hours per run are the difference of the
mean job wall times of variant and base; their resolution is the half-width of that difference's 95% Welch
interval over the runs (t quantile at the Welch-Satterthwaite degrees of freedom times the standard error), which
needs two runs of each. Below it (or with one run each), the table says so instead of printing a difference that
timing noise can make negative, and gives no points per extra hour. The FLOP count is exact, so
``extra_flops_pct`` (the Trainer's FLOPs, variant over base) always says how much more compute the variant needs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..io import write_text
from .tables import fmt, markdown, write_csv

FORMATS = {"wall_h_per_run": "{:.3f}", "peak_rss_gb": "{:.2f}", "peak_gpu_gb": "{:.2f}",
           "train_tokens_per_s": "{:,.0f}", "tflops_per_run": "{:.2f}", "extra_flops_pct": "{:+.1f}%",
           "points_per_extra_hour": "{:+.1f}"}


def extra_hours(variant_s, base_s) -> tuple[float, float]:
    """(variant - base mean wall time, its resolution), in hours. The resolution is the half-width of the 95%
    Welch interval of the difference; NaN with fewer than two runs of either."""
    from scipy import stats as st

    v, b = np.asarray(variant_s, float) / 3600, np.asarray(base_s, float) / 3600
    v, b = v[np.isfinite(v)], b[np.isfinite(b)]
    if not len(v) or not len(b):
        return math.nan, math.nan
    diff = float(v.mean() - b.mean())
    if len(v) < 2 or len(b) < 2:
        return diff, math.nan
    qv, qb = v.var(ddof=1) / len(v), b.var(ddof=1) / len(b)
    if qv + qb == 0:
        return diff, 0.0
    df = (qv + qb) ** 2 / (qv ** 2 / (len(v) - 1) + qb ** 2 / (len(b) - 1))
    return diff, float(st.t.ppf(0.975, df) * math.sqrt(qv + qb))


def cost_table(runs: pd.DataFrame, summary: pd.DataFrame, bases: dict[str, str]) -> pd.DataFrame:
    """Per model x task: job wall time, peak memory, training throughput, FLOPs, device; for a variant, its extra
    FLOPs, its extra hours per run over its base with their resolution, and points gained per extra hour (only
    where the extra time exceeds its resolution)."""
    rows = []
    for (model, task), g in runs.groupby(["model", "task"], sort=False):
        tokens_per_s = (g["train_tokens"] / g["train_seconds"]).astype(float)
        rows.append({"model": model, "base": bases.get(model, model), "task": task, "runs": len(g),
                     "wall_h_per_run": float(pd.to_numeric(g["wall_s"], "coerce").mean()) / 3600,
                     "peak_rss_gb": float(pd.to_numeric(g["max_rss_mb"], "coerce").max()) / 1024,
                     "peak_gpu_gb": pd.to_numeric(g["peak_gpu_memory_mb"], "coerce").max() / 1024,
                     "train_tokens_per_s": float(tokens_per_s.mean()),
                     "tflops_per_run": float(pd.to_numeric(g["total_flos"], "coerce").mean()) / 1e12,
                     "device": ", ".join(sorted(set(map(str, g["device"].dropna())))) or "n/a"})
    cost = pd.DataFrame(rows)
    if cost.empty:
        return cost
    key = cost.set_index(["model", "task"])
    means = summary.set_index(["model", "task"])["mean"]
    wall = {k: pd.to_numeric(g["wall_s"], "coerce").to_numpy() for k, g in runs.groupby(["model", "task"])}
    out = {c: [] for c in ("extra_flops_pct", "extra_h_per_run", "extra_h_resolution", "extra_h_resolved",
                           "points_per_extra_hour")}
    for r in cost.itertuples():
        if r.model == r.base or (r.base, r.task) not in key.index:
            for c, v in zip(out, (math.nan, math.nan, math.nan, False, math.nan)):
                out[c].append(v)
            continue
        base_flops = key.loc[(r.base, r.task), "tflops_per_run"]
        dh, res = extra_hours(wall[(r.model, r.task)], wall[(r.base, r.task)])
        resolved = bool(math.isfinite(res) and abs(dh) > res)
        gain = means.get((r.model, r.task), math.nan) - means.get((r.base, r.task), math.nan)
        out["extra_flops_pct"].append(100 * (r.tflops_per_run / base_flops - 1) if base_flops else math.nan)
        out["extra_h_per_run"].append(dh)
        out["extra_h_resolution"].append(res)
        out["extra_h_resolved"].append(resolved)
        out["points_per_extra_hour"].append(gain / dh if resolved and dh > 0 else math.nan)
    for c, values in out.items():
        cost[c] = values
    return cost


def _extra_cell(r) -> str:
    if not finite_number(r.extra_h_per_run):
        return ""
    if r.extra_h_resolved:
        return f"{r.extra_h_per_run:+.3f}"
    if not finite_number(r.extra_h_resolution):
        return "not resolved (one run each)"
    return f"below resolution (±{r.extra_h_resolution:.3f})"


def finite_number(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(v)


def write_cost_report(cost: pd.DataFrame, out_csv, out_md) -> None:
    write_csv(cost, out_csv)
    show = cost.copy()
    if "extra_h_per_run" in show:
        show["extra_h_per_run"] = [_extra_cell(r) for r in cost.itertuples()]
        show = show.drop(columns=["extra_h_resolution", "extra_h_resolved"])
    for col, spec in FORMATS.items():
        if col in show:
            show[col] = show[col].map(lambda v, s=spec: fmt(v, s))
    lines = ["# Cost", "",
             "Per fine-tuning run (mean over seeds): the job's wall time and peak resident memory (Snakemake "
             "`benchmark:`), peak GPU memory, training tokens per second, the Trainer's FLOP count, the device. For "
             "a variant: its extra FLOPs over its base (exact), the extra hours per run over its base, and the "
             "points (x100) gained per extra hour. Hours are job hours on the device shown: GPU-hours on a one-GPU "
             "job. An extra time is shown only when it exceeds its resolution, the half-width of the 95% Welch "
             "interval of the difference of the mean wall times (two runs of each needed); otherwise the table says "
             "so and gives no points per hour: timing noise, not the variant.", "",
             markdown(show, index=False), ""]
    write_text(out_md, "\n".join(lines))
