"""Mean, median and expected maximum over k seeds: what a recipe gives, typically and at its best.

Dodge et al. (2019, "Show Your Work"; 2020) report *expected validation performance*: the expected best score of
k runs drawn from the runs made. With the n scores of a model on a task sorted, ``v_(1) <= ... <= v_(n)``, and
k draws with replacement from them, the maximum is ``v_(i)`` with probability ``(i/n)^k - ((i-1)/n)^k``, so

    E[max of k] = sum_i v_(i) x ((i/n)^k - ((i-1)/n)^k)

(k = 1 is the mean; it rises towards the best run as k grows). Two recipes whose curves cross favour one at a
small budget and the other at a large one; a gap at k = 1 that closes by k = n is a gap in reliability, not in
what the model can reach. The median beside the mean shows how much a few failed seeds pull the mean.

Which runs count is :func:`.seeds.enters`'s rule: a diverged run (and a degenerate STS-B run) is counted in the
glue table and left out here, so these are statistics of the runs that produced a score.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..io import write_text
from .figures import figure
from .seeds import by_seed, seed_scores
from .tables import latex, markdown, write_csv


def expected_max(values: Sequence[float], k: int) -> float:
    """Expected maximum of ``k`` draws (with replacement) from ``values`` (NaN left out); NaN if none."""
    v = np.sort(np.asarray([x for x in values if np.isfinite(x)], dtype=float))
    n = v.size
    if n == 0 or k < 1:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(np.sum(v * ((i / n) ** k - ((i - 1) / n) ** k)))


def expected_max_table(runs: pd.DataFrame, models: Sequence[str], tasks: Sequence[str]) -> pd.DataFrame:
    """Long table: model, task (and ``average``), n, mean, median, k, expected_max (scores x100), k = 1..n."""
    scores = seed_scores(runs)
    rows = []
    for model in models:
        for task in list(tasks) + ["average"]:
            values = [v for v in by_seed(scores, model, task, tasks).values() if np.isfinite(v)]
            for k in range(1, len(values) + 1):
                rows.append({"model": model, "task": task, "n": len(values), "mean": float(np.mean(values)),
                             "median": float(np.median(values)), "k": k, "expected_max": expected_max(values, k)})
    return pd.DataFrame(rows, columns=["model", "task", "n", "mean", "median", "k", "expected_max"])


def write_expected_max(table: pd.DataFrame, tasks: Sequence[str], out_csv, out_md, out_tex) -> None:
    write_csv(table, out_csv)
    columns = list(tasks) + ["average"]
    cells, best = {}, {}
    for (model, task), g in table.groupby(["model", "task"], sort=False):
        last = g.iloc[-1]
        cells.setdefault(model, {})[task] = (f"{last['mean']:.2f} / {last['median']:.2f} / "
                                             f"{last['expected_max']:.2f} (n={int(last['n'])})")
        best.setdefault(model, {})[task] = last["expected_max"]
    shown = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=columns).fillna("")
    ks = table.pivot_table(index=["model", "task"], columns="k", values="expected_max", sort=False)
    ks.columns = [f"k={k}" for k in ks.columns]
    lines = ["# Mean, median and expected maximum over seeds", "",
             "Task score x100 of the runs that produced a score. Per cell: mean / median / expected maximum over "
             "n seeds (Dodge et al.'s expected validation performance at k = n: the expected best of n runs drawn "
             "from those made). Below: the expected maximum for every k; k = 1 is the mean.", "",
             markdown(shown), "", "## Expected maximum over k seeds", "",
             markdown(ks.map(lambda v: f"{v:.2f}" if np.isfinite(v) else "").reset_index(), index=False), ""]
    write_text(out_md, "\n".join(lines))
    write_text(out_tex, latex(shown, rank_by=pd.DataFrame(best).T.reindex(index=shown.index, columns=columns),
                              label="tab:expected-max",
                              caption="GLUE dev scores (x100) over seeds: mean / median / expected maximum of n "
                                      "runs (Dodge et al.'s expected validation performance); best expected "
                                      "maximum per column in bold."))


def plot_expected_max(table: pd.DataFrame, tasks: Sequence[str], paths) -> None:
    """One panel per task (and the average): expected maximum against k, one line per model."""
    columns = [t for t in list(tasks) + ["average"] if t in set(table["task"])]
    ncols = max(1, len(columns))
    with figure(paths, max(4.0, 3.0 * ncols), 3.4, ncols=ncols) as (fig, axes):
        axes = np.atleast_1d(axes)
        for ax, task in zip(axes, columns):
            for i, (model, g) in enumerate(table[table["task"] == task].groupby("model", sort=False)):
                ax.plot(g["k"], g["expected_max"], marker="o", markersize=3, label=model, color=f"C{i % 10}")
            ax.set_title(task)
            ax.set_xlabel("k (seeds drawn)")
        axes[0].set_ylabel("expected max of k runs (score x100)")
        axes[0].legend()
        fig.suptitle("Expected validation performance (Dodge et al.)")
