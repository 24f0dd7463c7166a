"""The GLUE table: every model's dev score per task and on the GLUE average, over seeds (CSV, Markdown, LaTeX),
with the variant-minus-base tests of :mod:`.significance` marked in it, and the deltas figure.

GLUE scores are shown x100, as GLUE reports them. A model's score on a task is the mean over seeds of the task
score (:func:`layerlens.tasks.task_score`: the mean of the task's metrics) ± the sample sd. The GLUE average is
the benchmark's: multi-metric tasks are averaged first (MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman;
MNLI: matched and mismatched accuracy), then the task scores are averaged, per seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import stats
from ..io import write_text
from . import significance as sig
from .figures import colour, figure
from .seeds import by_seed, n_flagged, paired_diffs, seed_scores
from .tables import latex, markdown, pm, write_csv

COLUMNS = ["model", "base", "task", "n_seeds", "n_diverged", "n_degenerate", "n_scored", "mean", "sd", "ci_lo",
           "ci_hi", "delta_mean", "delta_sd", "delta_n"]

RULE = ("Diverged runs (non-finite loss or logits) are counted and shown, and enter no mean, no test and no "
        "bootstrap. Degenerate runs (the same prediction for every dev example) are a real outcome of the recipe: "
        "they enter with their score where it is defined (accuracy, F1, MCC of a constant predictor); on STS-B the "
        "correlations of a constant are undefined, so there they are counted and shown and left out of means and "
        "tests. A seed's `average` needs a score on every task.")


def glue_summary(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str]) -> pd.DataFrame:
    """Long table: one row per (model, task) plus one per model for the GLUE average (task ``average``).

    Columns: model, base, task, n_seeds, n_diverged, n_degenerate, n_scored (the seeds in mean, sd and interval,
    :func:`.seeds.enters`), mean, sd, ci_lo, ci_hi, delta_mean, delta_sd, delta_n (scores x100; deltas paired by
    seed against the base; empty for base models). For ``average`` the counts are of seeds with such a run on
    some task.
    """
    scores = seed_scores(runs)
    rows = []
    for model in bases:
        for task in list(tasks) + ["average"]:
            seeds = by_seed(scores, model, task, tasks)
            if not seeds:
                continue
            s = stats.summarize(seeds.values())
            row = {"model": model, "base": bases[model], "task": task, "n_seeds": len(seeds),
                   "n_diverged": n_flagged(runs, model, task, tasks, seeds, "diverged"),
                   "n_degenerate": n_flagged(runs, model, task, tasks, seeds, "degenerate"),
                   "n_scored": s.n, **{k: v for k, v in s.as_dict().items() if k != "n"}}
            if bases[model] != model:
                d = stats.summarize(paired_diffs(seeds, by_seed(scores, bases[model], task, tasks)))
                row.update(delta_mean=d.mean, delta_sd=d.sd, delta_n=d.n)
            rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def write_glue_report(summary: pd.DataFrame, significance: pd.DataFrame, tasks: Sequence[str], out_csv, out_md,
                      out_tex, out_sig_csv, *, alpha: float = 0.05, power: float = 0.8,
                      statistics: dict | None = None) -> None:
    write_csv(summary, out_csv)
    write_csv(significance, out_sig_csv)
    columns = list(tasks) + ["average"]
    marks = sig.marks(significance)
    wide, means = {}, {}
    for _, r in summary.iterrows():
        cell = pm(r["mean"], r["sd"]) + marks.get((r["model"], r["task"]), "")
        notes = [f"{int(r[f'n_{flag}'])} {flag}" for flag in ("diverged", "degenerate") if r[f"n_{flag}"]]
        if notes:
            cell += f" ({', '.join(notes)})"
        wide.setdefault(r["model"], {})[r["task"]] = cell
        means.setdefault(r["model"], {})[r["task"]] = r["mean"]
    models = list(dict.fromkeys(summary["model"]))
    table = pd.DataFrame.from_dict(wide, orient="index").reindex(index=models, columns=columns)
    n_seeds = summary.groupby("model", sort=False)["n_seeds"].max().reindex(models)
    table.insert(0, "seeds", n_seeds.astype("Int64").astype(str))
    n = int(summary["n_seeds"].max()) if len(summary) else 0
    lines = [
        "# GLUE dev scores", "",
        "Task score x100, mean ± sd over seeds. A task's score is the GLUE benchmark's: the mean of its metrics "
        "(MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy); "
        "`average` is the GLUE average, the mean of the task scores, computed per seed.",
        RULE,
        f"{sig.MARK_SEED}: the difference to the base (a frozen variant: to the frozen base) survives the sign-flip "
        f"test over seeds, Holm-adjusted across every comparison x task at alpha = {alpha}.", "",
        markdown(table.fillna("")), ""]
    if not significance.empty:
        lines += sig.markdown_section(significance, n, alpha=alpha, power=power, statistics=statistics)
    write_text(out_md, "\n".join(lines))
    best = pd.DataFrame(means).T.reindex(index=models, columns=columns)
    write_text(out_tex, latex(table.drop(columns="seeds"), rank_by=best, axis=0, label="tab:glue",
                              caption=f"GLUE dev scores (x100), mean $\\pm$ sd over seeds; best per column in bold. "
                                      f"\\textdagger: difference to the base survives the sign-flip test over "
                                      f"seeds (Holm over every comparison x task, $\\alpha={alpha}$)."))


def plot_glue_deltas(summary: pd.DataFrame, tasks: Sequence[str], paths) -> None:
    """Per-task difference of each variant to its base, paired by seed: the mean over seeds, with the sd of the
    per-seed differences as error bars where there are two seeds or more (none from one seed)."""
    d = summary[summary["model"] != summary["base"]]
    variants = list(dict.fromkeys(d["model"]))
    columns = list(tasks) + ["average"]
    width = 0.8 / max(1, len(variants))
    n = d["delta_n"].dropna()
    n_lo, n_hi = (int(n.min()), int(n.max())) if len(n) else (0, 0)
    seeds = f"{n_lo}" if n_lo == n_hi else f"{n_lo}-{n_hi}"
    bars = ("error bars: sd of the per-seed differences" if n_hi >= 2 else "") + \
        (" (none where one seed)" if n_lo < 2 <= n_hi else "") + ("one seed: no error bars" if n_hi < 2 else "")
    with figure(paths, max(5.0, 1.1 * len(columns) + 2), 3.8) as (fig, ax):
        for i, v in enumerate(variants):
            t = d[d["model"] == v].set_index("task").reindex(columns)
            x = np.arange(len(columns)) + (i - (len(variants) - 1) / 2) * width
            err = t["delta_sd"].where(t["delta_n"] >= 2)  # an sd needs two seeds
            ax.bar(x, t["delta_mean"], width, label=v, color=colour(i, len(variants)))
            if err.notna().any():
                ax.errorbar(x, t["delta_mean"], yerr=err.to_numpy(), fmt="none", ecolor="black", capsize=3,
                            linewidth=1)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(columns)), columns)
        ax.set_ylabel("variant - base (score x100)")
        ax.set_title(f"GLUE dev: each variant minus its base, paired by seed\n(mean over {seeds} seeds; {bars})")
        if variants:
            ax.legend()
        ax.xaxis.grid(False)
