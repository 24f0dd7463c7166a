"""Statistics over seeds and dev examples: how sure is a difference between a variant and its base?

- :func:`summarize`: n, mean, sample sd (ddof=1) and the 95% t interval of the mean over seeds.
- :func:`sign_flip_test`: paired permutation test on per-seed differences (two-sided, scipy's), exact up to 16
  seeds. With n seeds its smallest possible p is 2 / 2**n, so fewer than 6 seeds can never give p < 0.05
  (:func:`min_seeds_sign_flip`).
- :func:`paired_bootstrap`: resample dev examples (the same resample for base and variant, for every seed) and
  recompute the task score difference averaged over seeds: a percentile interval and a two-sided p-value.
- :func:`bootstrap_ratio_ci`: percentile interval of a ratio of sums (the probe's top-1, output change's
  agreement), resampling whole examples (a cluster bootstrap over their sentences).
- :func:`holm`: Holm's step-down adjustment across a family of tests (tasks x variants).
- :func:`cohens_dz`: the paired effect size of observed differences.
- Planning, a priori (:mod:`layerlens.design` applies them to a config): :func:`holm_floor` and
  :func:`min_seeds_holm`, the smallest p a sign-flip test can reach after Holm over a family and the seeds it takes
  to go below alpha; :func:`detectable_effect` and :func:`seeds_for_effect`, the exact power of a paired t-test
  solved for the effect or the number of seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq

#: Monte Carlo sign patterns of the sign-flip test; at or below this many (2**16 < 100,000) it enumerates all
SIGN_FLIP_RESAMPLES = 100_000


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float
    ci_lo: float
    ci_hi: float

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": getattr(self, k) for k in ("n", "mean", "sd", "ci_lo", "ci_hi")}


def summarize(values, level: float = 0.95) -> Summary:
    """Mean, sample sd and the t interval of the mean; NaNs (diverged runs) are left out, not averaged."""
    x = _finite(values)
    n = x.size
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def _finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


# --- over seeds ------------------------------------------------------------------------------------------


def sign_flip_test(diffs: Sequence[float], n_resamples: int = SIGN_FLIP_RESAMPLES, seed: int = 0) -> float:
    """Two-sided paired permutation test of mean(diffs) = 0: under the null each difference's sign is a coin flip.

    ``scipy.stats.permutation_test`` (``permutation_type="samples"``): exact over all 2**n sign patterns while
    2**n <= n_resamples (up to 16 seeds by default), Monte Carlo beyond, where the observed pattern counts as one
    of the resamples, so p >= 2 / (1 + n_resamples) and never 0. NaN with fewer than 2 differences.
    """
    d = _finite(diffs)
    if d.size < 2:
        return math.nan
    res = sps.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                               alternative="two-sided", n_resamples=n_resamples, vectorized=True, rng=seed)
    return float(res.pvalue)


def sign_flip_floor(n: int, n_resamples: int = SIGN_FLIP_RESAMPLES) -> float:
    """The smallest p :func:`sign_flip_test` can give with n differences: 2 / 2**n exact, 2 / (1 + resamples)
    Monte Carlo."""
    return max(2 / 2 ** n, 2 / (1 + n_resamples))


def min_seeds_sign_flip(alpha: float = 0.05) -> int:
    """Fewest seeds with which an exact two-sided sign-flip test can reach p < alpha (2 / 2**n < alpha)."""
    return min_seeds_holm(1, alpha)


def cohens_dz(diffs: Sequence[float]) -> float:
    """Paired effect size: mean of the differences over their sample sd."""
    d = _finite(diffs)
    if d.size < 2:
        return math.nan
    sd = d.std(ddof=1)
    if sd == 0:
        return math.inf * np.sign(d.mean()) if d.mean() != 0 else math.nan
    return float(d.mean() / sd)


def paired_t_power(dz: float, n: float, alpha: float = 0.05) -> float:
    """Power of a two-sided one-sample (paired) t-test with n pairs for true effect size dz (noncentral t)."""
    if n < 2:
        return 0.0
    df = n - 1
    crit = sps.t.ppf(1 - alpha / 2, df)
    nc = abs(dz) * math.sqrt(n)
    upper, lower = float(sps.nct.sf(crit, df, nc)), float(sps.nct.cdf(-crit, df, nc))
    # scipy's noncentral t gives NaN where the far tail underflows: that tail is then 0 (the other, 1 - cdf)
    upper = upper if math.isfinite(upper) else 1.0 - float(sps.nct.cdf(crit, df, nc))
    return upper + (lower if math.isfinite(lower) else 0.0)


#: beyond this many pairs (2**40) a planning answer is "never"
_MAX_PAIRS = 2 ** 40


def seeds_for_effect(dz: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Fewest pairs (seeds) with which a two-sided paired t-test at level ``alpha`` detects a true effect ``dz``
    with the given power: the exact noncentral-t power, bracketed by doubling and then bisected over the integers
    (power grows with n), so it is fast and finite for any dz != 0. inf for dz = 0 or NaN; never fewer than 2."""
    if not math.isfinite(dz):
        return 2 if not math.isnan(dz) else math.inf
    if dz == 0:
        return math.inf
    lo, hi = 1, 2
    while paired_t_power(dz, hi, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > _MAX_PAIRS:
            return math.inf
    while hi - lo > 1:  # invariant: power(lo) < target <= power(hi) (lo = 1: no test at all)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if paired_t_power(dz, mid, alpha) >= power else (mid, hi)
    return hi


def detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true d_z that a two-sided paired t-test with ``n`` pairs at level ``alpha`` detects with the
    given power (a bracketed root find on the exact power); inf with fewer than 2 pairs."""
    if n < 2:
        return math.inf
    hi = 1.0
    while paired_t_power(hi, n, alpha) < power:
        hi *= 2
    return float(brentq(lambda d: paired_t_power(d, n, alpha) - power, 0.0, hi, xtol=1e-10, rtol=1e-12))


def holm_floor(n: int, m: int, n_resamples: int = SIGN_FLIP_RESAMPLES) -> float:
    """The smallest Holm-adjusted p a sign-flip test over ``n`` seeds can reach in a family of ``m`` tests: Holm's
    first step multiplies the smallest p by m (capped at 1)."""
    return min(1.0, m * sign_flip_floor(n, n_resamples))


def min_seeds_holm(m: int, alpha: float = 0.05, n_resamples: int = SIGN_FLIP_RESAMPLES) -> float:
    """Fewest seeds with which some difference can survive Holm over ``m`` sign-flip tests at ``alpha``
    (:func:`holm_floor` below alpha); inf if none can (the Monte Carlo floor 2 / (1 + resamples) times m)."""
    for n in range(2, 64):
        if holm_floor(n, m, n_resamples) < alpha:
            return n
    return math.inf


# --- over dev examples -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    delta: float
    ci_lo: float
    ci_hi: float
    p: float
    n_resamples: int


def paired_bootstrap(score: Callable[[dict], np.ndarray], labels: dict[str, np.ndarray],
                     base: Sequence[dict[str, np.ndarray]], variant: Sequence[dict[str, np.ndarray]],
                     n_resamples: int = 1000, seed: int = 0, level: float = 0.95, block: int = 250) -> Bootstrap:
    """Paired bootstrap over dev examples of score(variant) - score(base), averaged over seeds.

    ``labels`` maps each dev split to its labels; ``base[i]`` / ``variant[i]`` map each split to seed i's
    predictions, aligned with the labels. ``score`` is batched: it takes ``{split: (labels, predictions)}`` with
    arrays of shape (resamples, examples) and returns one score per resample. Each resample draws the examples
    of every split with replacement once, and every seed of both models is scored on that same draw.
    The two-sided p-value compares the resampled deltas, shifted to the null, with the observed one:
    ``(1 + #{|delta* - delta| >= |delta|}) / (1 + resamples)``.
    """
    if len(base) != len(variant) or not base:
        raise ValueError("base and variant need predictions for the same, non-empty list of seeds")
    splits = list(labels)

    def deltas(idx: dict[str, np.ndarray]) -> np.ndarray:  # idx: split -> (R, n) example indices
        per_seed = []
        for b, v in zip(base, variant):
            sb = score({s: (labels[s][idx[s]], b[s][idx[s]]) for s in splits})
            sv = score({s: (labels[s][idx[s]], v[s][idx[s]]) for s in splits})
            per_seed.append(sv - sb)
        with np.errstate(all="ignore"):
            return np.nanmean(np.asarray(per_seed), axis=0) if np.isfinite(per_seed).any() else \
                np.full(len(per_seed[0]), np.nan)

    observed = float(deltas({s: np.arange(len(labels[s]))[None, :] for s in splits})[0])
    rng = np.random.default_rng(seed)
    samples = []
    for start in range(0, n_resamples, block):
        r = min(block, n_resamples - start)
        samples.append(deltas({s: rng.integers(0, len(labels[s]), size=(r, len(labels[s]))) for s in splits}))
    samples = np.concatenate(samples)
    samples = samples[np.isfinite(samples)]
    if not math.isfinite(observed) or samples.size == 0:
        return Bootstrap(observed, math.nan, math.nan, math.nan, n_resamples)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    p = (1 + np.sum(np.abs(samples - observed) >= abs(observed) - 1e-12)) / (samples.size + 1)
    return Bootstrap(observed, float(lo), float(hi), float(min(1.0, p)), n_resamples)


def bootstrap_ratio_ci(hits, counts, n_boot: int, seed: int = 0, level: float = 0.95,
                       clusters: Sequence[Hashable] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of sum(hits) / sum(counts) for each row of ``hits``, resampling clusters of columns.

    Columns are sentences: ``counts`` their scored tokens, ``hits[r]`` how many of those a row (a layer, say)
    got right. Tokens of one sentence are not independent, and neither are the sentences of one example (an
    MRPC pair is two paraphrases): ``clusters`` labels each column with its example, and whole clusters are
    resampled (any hashable labels, e.g. (task, idx)); by default each column is its own cluster. Clusters
    without counts are left out; NaN with fewer than two. Resample b draws the k clusters, numbered in order of
    first appearance, as ``integers(0, k, (n_boot, k))[b]`` of ``numpy.random.default_rng(seed)``.
    """
    hits, counts = np.atleast_2d(np.asarray(hits)), np.asarray(counts)
    labels = range(counts.size) if clusters is None else list(clusters)
    if hits.shape[1] != counts.size or len(labels) != counts.size:
        raise ValueError(f"hits {hits.shape}, counts {counts.shape} and {len(labels)} cluster labels do not match")
    n_rows = hits.shape[0]
    codes: dict = {}
    cluster = np.array([codes.setdefault(label, len(codes)) for label in labels], dtype=np.int64)
    k = len(codes)
    cluster_hits = np.zeros((k, n_rows))
    np.add.at(cluster_hits, cluster, hits.T)
    cluster_counts = np.bincount(cluster, weights=counts, minlength=k)
    keep = cluster_counts > 0
    cluster_hits, cluster_counts = cluster_hits[keep], cluster_counts[keep]
    n = cluster_counts.size
    if n_boot <= 0 or n < 2:
        return np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    weights = np.zeros((n_boot, n))  # times each cluster is drawn in each resample
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1)
    ratios = (weights @ cluster_hits) / (weights @ cluster_counts)[:, None]  # (n_boot, rows)
    alpha = (1 - level) / 2
    return np.quantile(ratios, alpha, axis=0), np.quantile(ratios, 1 - alpha, axis=0)


# --- many tests ------------------------------------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN and do not count as tests."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out
