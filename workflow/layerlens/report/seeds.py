"""GLUE scores per seed: the numbers every GLUE statistic of the report starts from.

Scores are x100. A model's ``average`` at a seed is the mean of its task scores at that seed (the GLUE average);
a variant and its base are paired by seed (same seed: same classifier-head initialisation and data order).

One rule for every statistic (means, sds, intervals, the sign-flip test, the bootstrap), :func:`enters`:

- a **diverged** run (non-finite loss or logits) is counted and shown, and enters none of them;
- a **degenerate** run (the same prediction for every dev example) is a real outcome of the recipe: it enters
  with its score where the score is defined (accuracy, F1, MCC of a constant predictor); on STS-B the
  correlations of a constant are undefined, so it is counted and shown and enters none of them.

A run that does not enter is NaN here; an ``average`` with a NaN task at a seed is NaN at that seed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

SCALE = 100.0

Scores = dict[tuple[str, str], dict[int, float]]


def enters(diverged: bool, score: float) -> bool:
    """Whether a run enters the statistics: it did not diverge and its score is defined."""
    return not diverged and math.isfinite(score)


def seed_scores(runs: pd.DataFrame) -> Scores:
    """``{(model, task): {seed: score x100}}``, NaN for a run that does not :func:`enter <enters>`."""
    out: Scores = {}
    for (model, task), grp in runs.groupby(["model", "task"], sort=False):
        out[(model, task)] = {int(s): (v * SCALE if enters(d, v) else math.nan)
                              for s, v, d in zip(grp["seed"], grp["score"], grp["diverged"])}
    return out


def n_flagged(runs: pd.DataFrame, model: str, task: str, tasks: Sequence[str], seeds, flag: str) -> int:
    """How many of ``seeds`` have a ``flag`` (diverged, degenerate) run of ``model`` on ``task`` (for ``average``:
    on any of ``tasks``)."""
    r = runs[(runs["model"] == model) & runs["task"].isin(list(tasks) if task == "average" else [task])]
    return int(r.loc[r[flag].astype(bool) & r["seed"].isin(list(seeds)), "seed"].nunique())


def by_seed(scores: Scores, model: str, task: str, tasks: Sequence[str]) -> dict[int, float]:
    """One model's scores on ``task`` by seed; for ``average``, the mean over ``tasks`` at each seed all have."""
    if task != "average":
        return scores.get((model, task), {})
    per_task = [scores.get((model, t), {}) for t in tasks]
    if not per_task or not all(per_task):
        return {}
    common = set.intersection(*(set(d) for d in per_task))
    return {s: float(np.mean([d[s] for d in per_task])) for s in sorted(common)}


def paired_seeds(variant: dict[int, float], base: dict[int, float]) -> list[int]:
    """The seeds at which a variant and its base both have a score that enters the statistics, in order: every
    test of the two (over seeds and over dev examples) uses exactly these."""
    return [s for s in sorted(set(variant) & set(base)) if math.isfinite(variant[s]) and math.isfinite(base[s])]


def paired_diffs(variant: dict[int, float], base: dict[int, float]) -> list[float]:
    """variant - base at each of :func:`paired_seeds`."""
    return [variant[s] - base[s] for s in paired_seeds(variant, base)]
