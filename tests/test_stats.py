"""Statistics against scipy and hand computations."""

import math

import numpy as np
import pytest
from layerlens import metrics, stats, tasks
from scipy import stats as sps
from sklearn import metrics as skm


def exact_sign_flip(diffs) -> float:
    """Two-sided p by enumerating all 2**n sign patterns: the share with |mean| at least the observed one."""
    d = np.asarray(diffs, float)
    n = d.size
    patterns = np.arange(2 ** n)[:, None] >> np.arange(n) & 1  # one row per sign pattern, 1 = flipped
    means = np.abs((1 - 2 * patterns) @ d) / n
    return float(np.mean(means >= abs(d.mean()) * (1 - 1e-12)))


@pytest.mark.parametrize("diffs", [[0.5, 1.2, -0.3, 0.8, 1.1], [1.0, 2.0, 3.0], [-2.0, 0.5, 0.1, -0.7, 0.3, -1.2, 0.4]])
def test_sign_flip_matches_exact_enumeration(diffs):
    assert stats.sign_flip_test(diffs) == pytest.approx(exact_sign_flip(diffs))


def test_sign_flip_with_20_seeds_is_never_zero_and_counts_the_observed_pattern():
    """2**20 sign patterns exceed the resamples: Monte Carlo. A permutation p counts the observed pattern, (1+k)/(1+B)
    per tail (two-sided: twice the smaller tail), so all 20 differences positive give 2/(1+B), not 0."""
    B = 9999
    assert stats.sign_flip_test([1.0] * 20, n_resamples=B) == pytest.approx(2 / (1 + B))
    rng = np.random.default_rng(3)
    diffs = rng.normal(0.7, 1.0, 20)
    p = stats.sign_flip_test(diffs, n_resamples=B, seed=1)
    k = p * (1 + B) / 2 - 1  # resamples at least as extreme, in the smaller tail
    assert k == pytest.approx(round(k)) and round(k) >= 0
    exact = exact_sign_flip(diffs)
    assert 0.01 < exact < 0.2
    assert p == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / B))


def test_sign_flip_floor_and_seeds_needed_for_it():
    # all differences positive: the observed mean is the most extreme of 2^n sign patterns (and its mirror)
    for n in range(2, 9):
        assert stats.sign_flip_test([1.0] * n) == pytest.approx(2 / 2 ** n)
    assert stats.min_seeds_sign_flip(0.05) == 6  # 2/32 = 0.0625 >= 0.05 > 2/64
    assert stats.min_seeds_sign_flip(0.01) == 8  # 2/128 = 0.0156 >= 0.01 > 2/256
    assert math.isnan(stats.sign_flip_test([1.0]))


def test_holm_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.2, float("nan"), 0.01])  # NaN is not a test: m = 2
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert stats.holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_effect_size_and_power():
    d = [1.0, 2.0, 3.0, 2.0]
    assert stats.cohens_dz(d) == pytest.approx(2.0 / np.std(d, ddof=1))
    # power from its definition with scipy's noncentral t
    n, dz = 10, 1.0
    crit = sps.t.ppf(0.975, n - 1)
    assert stats.paired_t_power(dz, n) == pytest.approx(1 - sps.nct.cdf(crit, n - 1, dz * math.sqrt(n))
                                                        + sps.nct.cdf(-crit, n - 1, dz * math.sqrt(n)))


def test_summarize_matches_scipy():
    x = [71.2, 68.4, 70.1, 69.9, 72.5]
    s = stats.summarize(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert (s.n, s.mean, s.sd) == (5, pytest.approx(np.mean(x)), pytest.approx(np.std(x, ddof=1)))
    assert (s.ci_lo, s.ci_hi) == (pytest.approx(lo), pytest.approx(hi))


@pytest.mark.parametrize("task", ["cola", "mrpc", "rte", "stsb"])
def test_batched_scores_match_sklearn_and_scipy(task):
    rng = np.random.default_rng(0)
    if task == "stsb":
        y = rng.uniform(0, 5, (20, 50))
        p = y + rng.normal(0, 1.5, y.shape)
        p[:, :5] = p[:, 5:10]  # ties
    else:
        y = rng.integers(0, 2, (20, 50))
        p = np.where(rng.random(y.shape) < 0.7, y, 1 - y)
        p[0] = 1  # a constant row: F1/MCC edge cases
    got = tasks.batched_task_score(task, {"validation": (y, p)})
    want = [tasks.task_score(task, tasks.compute_metrics(task, {"validation": (yy, pp)})) for yy, pp in zip(y, p)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_batched_f1_and_mcc_edge_cases_like_sklearn():
    y = np.array([[0, 0, 0, 0]])
    p = np.array([[0, 0, 0, 0]])
    assert metrics.batched_f1(y, p)[0] == skm.f1_score(y[0], p[0], zero_division=0.0)
    assert metrics.batched_matthews(y, p)[0] == skm.matthews_corrcoef(y[0], p[0])


def _toy(seed=0, n=300, seeds=3, better=0.05):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = [np.where(rng.random(n) < 0.70, y, 1 - y) for _ in range(seeds)]
    var = [np.where(rng.random(n) < 0.70 + better, y, 1 - y) for _ in range(seeds)]
    return y, base, var


def accuracy_score(outputs):
    y, p = outputs["validation"]
    return metrics.batched_accuracy(y, p)


def test_paired_bootstrap_against_a_plain_loop():
    """The batched bootstrap equals a one-resample-at-a-time loop with scikit-learn on the same draws."""
    y, base, var = _toy()
    res = stats.paired_bootstrap(accuracy_score, {"validation": y}, [{"validation": b} for b in base],
                                 [{"validation": v} for v in var], n_resamples=300, seed=7, block=300)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(y), size=(300, len(y)))
    loop = np.array([np.mean([skm.accuracy_score(y[i], v[i]) - skm.accuracy_score(y[i], b[i])
                              for b, v in zip(base, var)]) for i in idx])
    observed = np.mean([skm.accuracy_score(y, v) - skm.accuracy_score(y, b) for b, v in zip(base, var)])
    assert res.delta == pytest.approx(observed)
    assert (res.ci_lo, res.ci_hi) == (pytest.approx(np.quantile(loop, 0.025)), pytest.approx(np.quantile(loop, 0.975)))
    p = (1 + np.sum(np.abs(loop - observed) >= abs(observed) - 1e-12)) / (len(loop) + 1)  # ties count
    assert res.p == pytest.approx(p)


def test_paired_bootstrap_interval_agrees_with_scipy():
    """One seed, accuracy difference: the percentile interval is scipy.stats.bootstrap's (paired)."""
    y, base, var = _toy(seed=1, n=400, seeds=1, better=0.08)
    res = stats.paired_bootstrap(accuracy_score, {"validation": y}, [{"validation": base[0]}],
                                 [{"validation": var[0]}], n_resamples=4000, seed=0)
    ref = sps.bootstrap(((var[0] == y).astype(float), (base[0] == y).astype(float)),
                        lambda a, b, axis=-1: a.mean(axis) - b.mean(axis), paired=True, n_resamples=4000,
                        method="percentile", random_state=0).confidence_interval
    assert res.ci_lo == pytest.approx(ref.low, abs=0.01) and res.ci_hi == pytest.approx(ref.high, abs=0.01)


def test_paired_bootstrap_null_and_clear_effect():
    y, base, _ = _toy()
    same = stats.paired_bootstrap(accuracy_score, {"validation": y}, [{"validation": b} for b in base],
                                  [{"validation": b} for b in base], n_resamples=200)
    assert same.delta == 0 and same.p == 1.0
    perfect = [{"validation": y.copy()} for _ in base]
    clear = stats.paired_bootstrap(accuracy_score, {"validation": y}, [{"validation": b} for b in base], perfect,
                                   n_resamples=500)
    assert clear.delta > 0.25 and clear.ci_lo > 0 and clear.p < 0.01


def test_bootstrap_ratio_interval_by_hand():
    hits = np.array([[1, 0, 3, 2]])
    counts = np.array([1, 2, 3, 2])
    lo, hi = stats.bootstrap_ratio_ci(hits, counts, 2000, seed=0)
    assert lo[0] < 6 / 8 < hi[0] and 0 <= lo[0] and hi[0] <= 1
    lo2, hi2 = stats.bootstrap_ratio_ci(np.array([[2, 2, 2, 2]]), np.array([2, 2, 2, 2]), 100)
    assert lo2[0] == hi2[0] == 1.0


def hand_cluster_bootstrap(hits, counts, clusters, n_boot, seed, level=0.95):
    """The textbook cluster bootstrap, one resample at a time: sum each cluster, draw clusters with replacement
    (numpy's integers(0, k, (n_boot, k)) over the clusters in order of appearance), take the ratio of the sums."""
    labels = list(dict.fromkeys(clusters))
    h = np.array([[sum(row[j] for j in range(len(clusters)) if clusters[j] == c) for c in labels] for row in hits])
    n = np.array([sum(counts[j] for j in range(len(clusters)) if clusters[j] == c) for c in labels])
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    ratios = np.array([[row[d].sum() / n[d].sum() for row in h] for d in draws])
    alpha = (1 - level) / 2
    return np.quantile(ratios, alpha, axis=0), np.quantile(ratios, 1 - alpha, axis=0)


def test_bootstrap_ratio_ci_is_the_cluster_bootstrap():
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 30, size=24)
    hits = np.stack([rng.binomial(counts, p) for p in (0.3, 0.6, 0.9)])
    clusters = [("mrpc", 11 - i // 2) for i in range(24)]  # sentence pairs of 12 examples
    for seed in (0, 5):
        got = stats.bootstrap_ratio_ci(hits, counts, 300, seed=seed, clusters=clusters)
        want = hand_cluster_bootstrap(hits, counts, clusters, 300, seed)
        np.testing.assert_array_equal(got, want)
    # without clusters every column is its own
    np.testing.assert_array_equal(stats.bootstrap_ratio_ci(hits, counts, 300, seed=1),
                                  hand_cluster_bootstrap(hits, counts, list(range(24)), 300, 1))


def test_bootstrap_ratio_ci_resamples_pairs_together():
    """Two perfectly correlated sentences per example carry one example's information: the interval of the
    doubled table, clustered by example, is exactly the interval of the single table; taking them as independent
    sentences would make it narrower."""
    rng = np.random.default_rng(3)
    counts = rng.integers(5, 20, size=40)
    hits = rng.binomial(counts, 0.7)[None, :]
    single = stats.bootstrap_ratio_ci(hits, counts, 1000, seed=2)
    doubled_hits, doubled_counts = np.repeat(hits, 2, axis=1), np.repeat(counts, 2)
    pairs = stats.bootstrap_ratio_ci(doubled_hits, doubled_counts, 1000, seed=2, clusters=np.repeat(np.arange(40), 2))
    assert pairs[1][0] > pairs[0][0]
    np.testing.assert_array_equal(pairs, single)
    lo, hi = stats.bootstrap_ratio_ci(doubled_hits, doubled_counts, 1000, seed=2)
    assert hi[0] - lo[0] < 0.85 * (single[1][0] - single[0][0])
