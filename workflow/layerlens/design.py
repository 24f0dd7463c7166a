"""The design check: before anything runs, can this config's seeds answer its own question?

The report tests every comparison of :func:`layerlens.grid.comparisons` (a variant against its base and against
its controls) on every task with a sign-flip test over seeds, Holm-adjusted across that family of ``m`` tests.
Two facts follow from the config alone (:func:`check`, printed by ``python -m layerlens.config`` and at the start
of every Snakemake run; :func:`describe` words it):

- **Can anything survive?** With ``n`` seeds the smallest p of an exact two-sided sign-flip test is ``2 / 2^n``,
  and Holm multiplies the smallest p of the family by ``m``: every test's adjusted p is at least
  ``min(1, m x 2 / 2^n)``. If that is not below alpha, no difference can survive, whatever the data; the check
  says so and gives the seeds it would take (:func:`layerlens.stats.min_seeds_holm`).
- **What could it detect?** The smallest true difference a paired t-test over ``n`` seeds detects with the
  configured power at ``alpha / m`` (the level of Holm's first step, the strictest), in task-score points: the
  detectable d_z (exact noncentral-t power, :func:`layerlens.stats.detectable_effect`) times the sd of a paired
  difference. That sd is planned, not estimated from the effect: ``statistics.planning_sd`` per task (the sd of a
  score over seeds), else the cited literature value :data:`LITERATURE_SD`, doubled in variance (x sqrt 2: two
  runs, taken as independent; pairing by seed can only make it smaller) -- or, when results of a previous run
  exist, the sd of the paired differences measured from them (:func:`measured_sd`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from . import grid, stats

_IBM = "literature: bert-base-uncased over 20 seeds, IBM model-recycling"
#: sd of a GLUE task score over fine-tuning seeds, BERT-base, points x100: (sd, source). From IBM's
#: model-recycling baseline (Choshen et al. 2022), bert-base-uncased fine-tuned with 20 random seeds, the accuracy sd
#: per task (github.com/IBM/model-recycling, bert-base-uncased_pretrain_scores_table.md). CoLA (Matthews) and
#: STS-B (correlations) are not on that table's accuracy scale: they take its largest sd among the four small
#: tasks (RTE's), a deliberately conservative stand-in until a run measures theirs.
LITERATURE_SD: dict[str, tuple[float, str]] = {
    "rte": (2.04, _IBM), "mrpc": (1.61, _IBM), "sst2": (0.42, _IBM), "qnli": (0.75, _IBM), "qqp": (0.54, _IBM),
    "mnli": (0.23, _IBM), "wnli": (6.41, _IBM),
    "cola": (2.04, "stand-in: RTE's, no Matthews sd cited"),
    "stsb": (2.04, "stand-in: RTE's, no correlation sd cited"),
}


def stated_sd(statistics: dict, task: str) -> tuple[float, str]:
    """(sd of a task score over seeds, where it comes from): ``statistics.planning_sd`` or the literature."""
    given = (statistics.get("planning_sd") or {}).get(task)
    if given is not None:
        return float(given), "statistics.planning_sd"
    return LITERATURE_SD[task]


def measured_sd(config: dict, results: str | Path = "results") -> dict[str, tuple[float, int]]:
    """``{task: (sd of a paired difference in points, degrees of freedom)}`` from the fine-tuning results already
    in ``results/finetune``: the per-seed differences of every comparison, their variances pooled (each with its
    n - 1 degrees of freedom). Runs that diverged or have no score are left out, as in the report."""
    from .io import read_json

    def scores(model: str, task: str) -> dict[int, float]:
        out = {}
        for seed in config["seeds"]:
            path = Path(results) / "finetune" / model / task / f"seed{seed}" / "metrics.json"
            if path.is_file():
                m = read_json(path)
                if not m.get("diverged") and m.get("main_score") is not None:
                    out[seed] = 100 * float(m["main_score"])
        return out

    out = {}
    for task in config["tasks"]:
        ss, df = 0.0, 0
        for model, reference, _ in grid.comparisons(config):
            a, b = scores(model, task), scores(reference, task)
            diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]
            if len(diffs) >= 2:
                mean = sum(diffs) / len(diffs)
                ss += sum((d - mean) ** 2 for d in diffs)
                df += len(diffs) - 1
        if df >= 2:
            out[task] = (math.sqrt(ss / df), df)
    return out


@dataclass
class TaskPlan:
    task: str
    sd_diff: float  # sd of a paired difference, points
    source: str
    detectable: float  # points; inf where nothing can survive


@dataclass
class Design:
    n_seeds: int
    n_comparisons: int
    n_tasks: int
    alpha: float
    power: float
    p_floor: float  # the smallest raw p of a sign-flip test over n_seeds
    holm_floor: float  # the smallest Holm-adjusted p any test of the family can reach
    seeds_to_survive: float  # fewest seeds with which holm_floor < alpha
    detectable_dz: float
    tasks: list[TaskPlan] = field(default_factory=list)

    @property
    def n_tests(self) -> int:
        return self.n_comparisons * self.n_tasks

    @property
    def passes(self) -> bool:
        """Some difference can survive Holm at alpha (the family is not empty)."""
        return self.n_tests > 0 and self.holm_floor < self.alpha


def plan(n_seeds: int, n_comparisons: int, tasks: list[str], statistics: dict,
         measured: dict[str, tuple[float, int]] | None = None) -> Design:
    """The design of ``n_comparisons`` comparisons x ``tasks`` tested over ``n_seeds`` seeds."""
    alpha, power = statistics.get("alpha", 0.05), statistics.get("power", 0.8)
    m = max(1, n_comparisons * len(tasks))
    floor = stats.holm_floor(n_seeds, m)
    dz = stats.detectable_effect(n_seeds, alpha / m, power) if floor < alpha else math.inf
    plans = []
    for task in tasks:
        if measured and task in measured:
            sd, df = measured[task]
            source = f"measured: paired differences of the results present ({df} df)"
        else:
            sd, source = stated_sd(statistics, task)
            sd, source = sd * math.sqrt(2), f"{sd:g} x sqrt 2, {source}"
        plans.append(TaskPlan(task, sd, source, dz * sd))
    return Design(n_seeds, n_comparisons, len(tasks), alpha, power, stats.sign_flip_floor(n_seeds), floor,
                  stats.min_seeds_holm(m, alpha), dz, plans)


def detectable(n_seeds: int, n_tests: int, task: str, statistics: dict) -> float:
    """Points: the smallest difference on ``task`` that one of ``n_tests`` Holm-adjusted tests over ``n_seeds``
    seeds detects with the configured power, from the stated planning sd (a priori: no result enters)."""
    return plan(n_seeds, n_tests, [task], statistics).tasks[0].detectable


def check(config: dict, results: str | Path = "results") -> Design:
    """The design of a validated config (with the sd measured from ``results`` where a run left any)."""
    return plan(len(config["seeds"]), len(grid.comparisons(config)), list(config["tasks"]), config["statistics"],
                measured_sd(config, results))


def describe(d: Design) -> str:
    """The design check in words, for a terminal."""
    n, m = d.n_seeds, d.n_tests
    if m == 0:
        return "Design check: no variant is fine-tuned, so there is no test to plan."
    lines = [f"Design check: {n} seed(s); a Holm family of {m} test(s) ({d.n_comparisons} comparison(s) x "
             f"{d.n_tasks} task(s)) at alpha = {d.alpha:g}."]
    exact = 2 ** n <= stats.SIGN_FLIP_RESAMPLES
    lines.append(f"  The smallest p a sign-flip test over {n} seeds can give is "
                 + (f"2/2^{n} = {d.p_floor:.3g}" if exact else f"2/(1 + {stats.SIGN_FLIP_RESAMPLES:,}) = "
                                                            f"{d.p_floor:.3g}")
                 + f"; after Holm over {m} tests, {d.holm_floor:.3g}.")
    if not d.passes:
        need = "no number of seeds" if not math.isfinite(d.seeds_to_survive) else f"at least {d.seeds_to_survive}"
        lines.append(f"  FAILS: no difference can survive, whatever the results. This family needs {need} seeds "
                     f"(and more for power); or test fewer comparisons or tasks.")
        return "\n".join(lines)
    lines.append(f"  PASSES: a difference can survive. The smallest difference a paired t-test over {n} seeds "
                 f"detects with {d.power:.0%} power at alpha/{m} = {d.alpha / m:.3g} is d_z = {d.detectable_dz:.2f}"
                 " sd of a paired difference:")
    width = max(len(t.task) for t in d.tasks)
    for t in d.tasks:
        lines.append(f"    {t.task:<{width}}  {t.detectable:5.2f} points  (sd of a paired difference "
                     f"{t.sd_diff:.2f}: {t.source})")
    return "\n".join(lines)
