"""Variant against base: the significance table (``significance.csv`` and the "Variant minus base" section of
``glue.md``), and the marks the GLUE table carries for the differences that survive.

A variant is compared with its base in two ways (:mod:`layerlens.stats`):

- over seeds: the per-seed differences (same seed: same head initialisation and data order) with an exact
  sign-flip test, their effect size d_z and the seeds a paired t-test needs to detect it;
- over dev examples: a paired bootstrap of the score difference from the saved predictions, averaged over seeds.

Both use the same seeds (``n_pairs``): those where both runs enter the statistics (:func:`.seeds.paired_seeds`:
neither diverged, both scored).

Both sets of p-values are Holm-adjusted across tasks x variants; the tables mark the deltas that survive.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .. import stats
from ..tasks import batched_task_score, get_task
from .collect import read_predictions
from .seeds import SCALE, by_seed, paired_diffs, paired_seeds, seed_scores
from .tables import fmt, markdown, p_value, signed

MARK_BOOT, MARK_SEED = "*", "†"

COLUMNS = ["variant", "base", "task", "delta", "delta_sd", "n_pairs", "d_z", "p_seeds", "p_seeds_holm",
           "seeds_needed",
           "boot_delta", "boot_lo", "boot_hi", "p_boot", "p_boot_holm", "survives_boot", "survives_seeds"]


def compare(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str], *, alpha: float = 0.05,
            n_boot: int = 1000, power: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Every variant against its base on every task and on the average: tests, effect sizes, Holm."""
    scores = seed_scores(runs)
    paths = {(r.model, r.task, int(r.seed)): r.predictions for r in runs.itertuples()}
    rows = []
    for variant, base in bases.items():
        if variant == base:
            continue
        for task in list(tasks) + ["average"]:
            v, b = by_seed(scores, variant, task, tasks), by_seed(scores, base, task, tasks)
            seeds = paired_seeds(v, b)
            if not seeds:
                continue
            diffs = paired_diffs(v, b)
            dz = stats.cohens_dz(diffs)
            boot = _bootstrap(paths, base, variant, tasks if task == "average" else [task], seeds, n_boot, seed)
            rows.append({"variant": variant, "base": base, "task": task, "delta": float(np.mean(diffs)),
                         "delta_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan,
                         "n_pairs": len(diffs), "d_z": dz, "p_seeds": stats.sign_flip_test(diffs, seed=seed),
                         "seeds_needed": max(stats.seeds_needed(dz, alpha, power), stats.min_seeds_sign_flip(alpha)),
                         "boot_delta": boot.delta * SCALE, "boot_lo": boot.ci_lo * SCALE,
                         "boot_hi": boot.ci_hi * SCALE, "p_boot": boot.p})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    if table.empty:
        return table
    family = table["task"] != "average"  # Holm across tasks x variants; the average is reported unadjusted
    for col in ("p_seeds", "p_boot"):
        table.loc[family, f"{col}_holm"] = stats.holm(table.loc[family, col].to_numpy())
    table["survives_boot"] = table["p_boot_holm"] < alpha
    table["survives_seeds"] = table["p_seeds_holm"] < alpha
    return table


def _bootstrap(paths, base: str, variant: str, tasks: Sequence[str], seeds: Sequence[int], n_boot: int,
               seed: int) -> stats.Bootstrap:
    """Paired bootstrap of the (average) task score over the dev examples of ``tasks``, on ``seeds`` (the seed-level
    test's: a diverged run still writes predictions, class 0 everywhere, and must not enter)."""
    labels, base_preds, var_preds = {}, [], []
    for s in seeds:
        b_all, v_all = {}, {}
        for t in tasks:
            b, v = read_predictions(paths[(base, t, s)]), read_predictions(paths[(variant, t, s)])
            for split in get_task(t).dev_splits:
                idx, y, pb = b[split]
                idx_v, y_v, pv = v[split]
                if not (np.array_equal(idx, idx_v) and np.array_equal(y, y_v)):
                    raise ValueError(f"{base} and {variant} were evaluated on different {t} {split} examples")
                labels[(t, split)] = y
                b_all[(t, split)], v_all[(t, split)] = pb, pv
        base_preds.append(b_all)
        var_preds.append(v_all)

    def score(outputs):
        return np.mean([batched_task_score(t, {sp: outputs[(t, sp)] for sp in get_task(t).dev_splits})
                        for t in tasks], axis=0)

    return stats.paired_bootstrap(score, labels, base_preds, var_preds, n_resamples=n_boot, seed=seed)


def marks(significance: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``{(variant, task): "*†"}``: the tests whose Holm-adjusted p is below alpha."""
    out = {}
    for r in significance.itertuples():
        out[(r.variant, r.task)] = (MARK_BOOT if r.survives_boot else "") + (MARK_SEED if r.survives_seeds else "")
    return out


def markdown_section(significance: pd.DataFrame, n_seeds: int, *, alpha: float, power: float) -> list[str]:
    """The "Variant minus base" section of glue.md: the table with its legend."""
    s = significance
    min_seeds = stats.min_seeds_sign_flip(alpha)
    show = pd.DataFrame({
        "variant": s["variant"], "task": s["task"],
        "Δ ± sd (seeds)": [signed(d, sd) for d, sd in zip(s["delta"], s["delta_sd"])],
        "pairs": s["n_pairs"], "d_z": s["d_z"].map(lambda v: fmt(v, "{:.2f}", "n/a")),
        "p seeds (Holm)": [f"{p_value(a)} ({p_value(b)})" for a, b in zip(s["p_seeds"], s["p_seeds_holm"])],
        "seeds needed": s["seeds_needed"].map(lambda v: "∞" if not math.isfinite(v) else str(int(v))),
        "Δ bootstrap [95% CI]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(d) else "n/a"
                                 for d, lo, hi in zip(s["boot_delta"], s["boot_lo"], s["boot_hi"])],
        "p boot (Holm)": [f"{p_value(a)} ({p_value(b)})" for a, b in zip(s["p_boot"], s["p_boot_holm"])],
    })
    return [
        "## Variant minus base", "",
        "Δ ± sd (seeds): mean and sd of the per-seed differences (same seed = same classifier-head "
        "initialisation and data "
        "order); pairs: the seeds both tests use, those at which both runs enter (see above); d_z: that mean over the "
        "differences' sd; p seeds: two-sided sign-flip test (exact up to 16 seeds, beyond that over "
        f"{stats.SIGN_FLIP_RESAMPLES:,} random sign patterns); seeds "
        f"needed: seeds for which a paired t-test detects an effect of this d_z with {power:.0%} power at alpha = "
        f"{alpha} (never fewer than {min_seeds}). Δ bootstrap: resampling the dev examples, all seeds on the "
        "same resample, with its 95% percentile interval; p boot: its two-sided p-value. The `average` rows "
        "are not part of the Holm family.", "",
        _floor_note(n_seeds, min_seeds, alpha), "",
        markdown(show, index=False), ""]


def _floor_note(n_seeds: int, min_seeds: int, alpha: float) -> str:
    if not n_seeds:
        return ""
    floor, resamples = stats.sign_flip_floor(n_seeds), stats.SIGN_FLIP_RESAMPLES
    if 2 ** n_seeds <= resamples:
        return (f"With {n_seeds} seeds the smallest p-value a sign-flip test can give is 2/2^{n_seeds} = {floor:.3g}; "
                f"it takes at least {min_seeds} seeds to reach p < {alpha}.")
    return (f"With {n_seeds} seeds the sign-flip test draws {resamples:,} random sign patterns; the observed one "
            f"counts too, so its smallest p-value is 2/(1 + {resamples:,}) = {floor:.3g}.")
