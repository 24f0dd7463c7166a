"""GLUE scores per seed: the numbers every GLUE statistic of the report starts from.

Scores are x100. A model's ``average`` at a seed is the mean of its task scores at that seed (the GLUE average);
a variant and its base are paired by seed (same seed: same classifier-head initialisation and data order).
Diverged runs (NaN loss) are NaN here: counted and shown, never averaged in.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

SCALE = 100.0

Scores = dict[tuple[str, str], dict[int, float]]


def seed_scores(runs: pd.DataFrame) -> Scores:
    """``{(model, task): {seed: score x100}}``, NaN for a diverged run."""
    out: Scores = {}
    for (model, task), grp in runs.groupby(["model", "task"], sort=False):
        out[(model, task)] = {int(s): (math.nan if d else v * SCALE)
                              for s, v, d in zip(grp["seed"], grp["score"], grp["diverged"])}
    return out


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
