"""Variant against its base and its controls: the significance table (``significance.csv`` and the "paired by
seed" section of ``glue.md``), and the marks the GLUE table carries for the differences that survive.

Each comparison of :func:`layerlens.grid.comparisons` (a variant against its base, against each of its controls;
a frozen variant against its frozen base) is made in two ways (:mod:`layerlens.stats`):

- **the recipe, over seeds (the headline):** the per-seed differences (same seed: same head initialisation and
  data order) with an exact sign-flip test, Holm-adjusted across comparisons x tasks, and their effect size d_z.
  This asks whether a model built and trained this way scores higher. Beside it, planned a priori
  (:mod:`layerlens.design`, from the planning sd, never from the observed effect): the smallest difference these
  seeds could detect with the configured power after Holm;
- **these checkpoints, over dev examples (secondary):** a paired bootstrap of the score difference from the saved
  predictions, averaged over seeds. It holds the trained checkpoints fixed and asks only whether *they* differ on
  *this* dev set; it says nothing about another seed's checkpoint.

Both use the same seeds (``n_pairs``): those where both runs enter the statistics (:func:`.seeds.paired_seeds`:
neither diverged, both scored). The GLUE table marks the differences to the base that survive over seeds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .. import design, stats
from ..tasks import batched_task_score, get_task
from .collect import read_predictions
from .seeds import SCALE, by_seed, paired_diffs, paired_seeds, seed_scores
from .tables import fmt, markdown, p_value, signed

MARK_SEED = "†"

COLUMNS = ["variant", "base", "against", "task", "delta", "delta_sd", "n_pairs", "d_z", "p_seeds", "p_seeds_holm",
           "detectable", "boot_delta", "boot_lo", "boot_hi", "p_boot", "p_boot_holm", "survives_boot",
           "survives_seeds"]


def compare(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str], *, alpha: float = 0.05,
            n_boot: int = 1000, power: float = 0.8, seed: int = 0, comparisons=None,
            statistics: dict | None = None) -> pd.DataFrame:
    """Each comparison on every task and on the average: tests, effect sizes, Holm, the detectable difference.

    ``comparisons``: ``(model, reference, label)`` triples (:func:`layerlens.grid.comparisons`); by default every
    model of ``bases`` against its base. ``statistics``: the config's, for the planning sd (``planning_sd``).
    ``variant`` / ``base`` name the compared model and its reference, ``against`` what the reference is.
    """
    scores = seed_scores(runs)
    paths = {(r.model, r.task, int(r.seed)): r.predictions for r in runs.itertuples()}
    if comparisons is None:
        comparisons = [(v, b, "base") for v, b in bases.items() if v != b]
    rows = []
    for variant, base, label in comparisons:
        for task in list(tasks) + ["average"]:
            v, b = by_seed(scores, variant, task, tasks), by_seed(scores, base, task, tasks)
            seeds = paired_seeds(v, b)
            if not seeds:
                continue
            diffs = paired_diffs(v, b)
            dz = stats.cohens_dz(diffs)
            boot = _bootstrap(paths, base, variant, tasks if task == "average" else [task], seeds, n_boot, seed)
            rows.append({"variant": variant, "base": base, "against": label, "task": task,
                         "delta": float(np.mean(diffs)),
                         "delta_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan,
                         "n_pairs": len(diffs), "d_z": dz, "p_seeds": stats.sign_flip_test(diffs, seed=seed),
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
    m = int(family.sum())  # a priori: what these pairs could detect in this family, from the planning sd
    settings = {**(statistics or {}), "alpha": alpha, "power": power}
    table["detectable"] = [design.detectable(int(r.n_pairs), m, r.task, settings) if r.task != "average" and m
                           else math.nan for r in table.itertuples()]
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
    """``{(model, task): "†"}``: the differences to the base (for a frozen variant, to the frozen base) that survive
    the seed-level test after Holm. The bootstrap over dev examples marks nothing: it is about these checkpoints."""
    out = {}
    for r in significance.itertuples():
        if r.against in ("base", "frozen encoder") and r.survives_seeds:
            out[(r.variant, r.task)] = MARK_SEED
    return out


def markdown_section(significance: pd.DataFrame, n_seeds: int, *, alpha: float, power: float,
                     statistics: dict | None = None) -> list[str]:
    """The "paired by seed" section of glue.md: the design check, the table, its legend."""
    s = significance
    settings = {**(statistics or {}), "alpha": alpha, "power": power}
    family = s[s["task"] != "average"]
    plan = design.plan(n_seeds, len(family[["variant", "base"]].drop_duplicates()), list(dict.fromkeys(family["task"])),
                       settings)
    show = pd.DataFrame({
        "model": s["variant"], "against": [f"{a} ({b})" if a != "base" else b for a, b in zip(s["against"], s["base"])],
        "task": s["task"],
        "Δ ± sd over seeds": [signed(d, sd) for d, sd in zip(s["delta"], s["delta_sd"])],
        "pairs": s["n_pairs"], "d_z": s["d_z"].map(lambda v: fmt(v, "{:.2f}", "n/a")),
        "p seeds (Holm)": [f"{p_value(a)} ({p_value(b)})" for a, b in zip(s["p_seeds"], s["p_seeds_holm"])],
        "detectable Δ": s["detectable"].map(lambda v: "n/a" if v != v else ("never" if math.isinf(v) else f"{v:.2f}")),
        "these checkpoints: Δ [95% CI]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(d) else "n/a"
                                          for d, lo, hi in zip(s["boot_delta"], s["boot_lo"], s["boot_hi"])],
        "these checkpoints: p (Holm)": [f"{p_value(a)} ({p_value(b)})" for a, b in zip(s["p_boot"], s["p_boot_holm"])],
    })
    return [
        "## Each variant against its base and its controls, paired by seed", "",
        "The question is about the recipe: does a model made this way and fine-tuned this way score higher? "
        "Δ ± sd over seeds: mean and sd of the per-seed differences (same seed = same classifier-head "
        "initialisation and data order); pairs: the seeds at which both runs enter (see above); d_z: that mean over "
        "the differences' sd; p seeds: two-sided sign-flip test over seeds (exact up to 16 seeds, beyond that over "
        f"{stats.SIGN_FLIP_RESAMPLES:,} random sign patterns), Holm-adjusted across every comparison x task "
        "(`average` rows are not in the family); detectable Δ: planned a priori, not from the observed effect: the "
        f"smallest difference a paired t-test over these pairs detects with {power:.0%} power at Holm's strictest "
        "level, from the planning sd (see the design check below; `never`: no p can survive Holm here).", "",
        "Secondary, a different question: *these checkpoints on this dev set*. A paired bootstrap over dev examples "
        "(all seeds on the same resample) with its 95% percentile interval and Holm-adjusted p. It holds the trained "
        "checkpoints fixed, so it says how sure we are that these particular runs differ on these examples, not "
        "that the recipe would do it again with another seed.", "",
        "```", design.describe(plan), "```", "",
        markdown(show, index=False), ""]
