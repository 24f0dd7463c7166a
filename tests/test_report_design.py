"""The report's design additions from fixture runs: expected maximum over k seeds against brute-force enumeration,
every comparison against the controls paired by seed, the GLUE table's marks from the seed-level test only."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from layerlens.report import collect, expected_max, glue, significance

# task scores (fractions) per model and seed: a variant, its base and two controls, 7 seeds, RTE only
SCORES = {
    "base": [0.60, 0.62, 0.61, 0.63, 0.59, 0.62, 0.60],
    "dup": [0.66, 0.68, 0.67, 0.69, 0.65, 0.68, 0.66],
    "dup.compute": [0.61, 0.62, 0.60, 0.64, 0.60, float("nan"), 0.62],  # seed 6 diverged
    "dup.random": [0.66, 0.69, 0.66, 0.70, 0.64, 0.67, 0.66],
}


@pytest.fixture
def runs(tmp_path):
    paths = []
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 40)
    for model, values in SCORES.items():
        for seed, score in enumerate(values, 1):
            p = tmp_path / model / "rte" / f"seed{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            diverged = math.isnan(score)
            p.write_text(json.dumps({"model": model, "task": "rte", "seed": seed, "diverged": diverged,
                                     "main_score": None if diverged else score}))
            pred = np.where(rng.random(40) < score, labels, 1 - labels)
            pd.DataFrame({"split": "validation", "idx": np.arange(40), "label": labels, "prediction": pred}).to_csv(
                p.with_name("predictions.tsv"), sep="\t", index=False)
            paths.append(p)
    return collect.collect_finetune(paths)


def brute_force_expected_max(values, k):
    """The mean of max over every one of the n^k equally likely ordered draws with replacement."""
    return float(np.mean([max(draw) for draw in itertools.product(values, repeat=k)]))


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0], [70.1, 65.2, 71.9, 71.9, 50.0], [5.0]])
def test_expected_max_against_enumeration(values):
    for k in range(1, len(values) + 2):
        assert expected_max.expected_max(values, k) == pytest.approx(brute_force_expected_max(values, k))
    assert expected_max.expected_max(values, 1) == pytest.approx(np.mean(values))
    assert math.isnan(expected_max.expected_max([float("nan")], 2))


def test_expected_max_table_and_figure(runs, tmp_path):
    table = expected_max.expected_max_table(runs, list(SCORES), ["rte"])
    compute = table[(table.model == "dup.compute") & (table.task == "rte")]
    scored = [100 * v for v in SCORES["dup.compute"] if v == v]  # the diverged seed produced no score
    assert list(compute["k"]) == [1, 2, 3, 4, 5, 6] and (compute["n"] == 6).all()
    assert compute["mean"].iloc[0] == pytest.approx(np.mean(scored))
    assert compute["median"].iloc[0] == pytest.approx(np.median(scored))
    assert compute["expected_max"].iloc[2] == pytest.approx(brute_force_expected_max(scored, 3))
    out = [tmp_path / f"e.{x}" for x in ("csv", "md", "tex", "png", "pdf")]
    expected_max.write_expected_max(table, ["rte"], *out[:3])
    expected_max.plot_expected_max(table, ["rte"], out[3:])
    md = out[1].read_text()
    assert f"{np.mean(scored):.2f} / {np.median(scored):.2f} / " in md and "k=7" in md
    assert out[3].stat().st_size > 1000 and out[4].read_bytes()[:4] == b"%PDF"


def test_each_variant_against_its_base_and_its_controls_paired_by_seed(runs, tmp_path):
    comparisons = [("dup", "base", "base"), ("dup", "dup.compute", "compute-matched base"),
                   ("dup", "dup.random", "random layers")]
    bases = {"base": "base", "dup": "base", "dup.compute": "base", "dup.random": "base"}
    sig = significance.compare(runs, bases, ["rte"], comparisons=comparisons, n_boot=100,
                               statistics={"planning_sd": {"rte": 1.0}})
    rows = sig[sig.task == "rte"].set_index("against")
    assert list(rows.index) == ["base", "compute-matched base", "random layers"]
    d_base = 100 * (np.array(SCORES["dup"]) - SCORES["base"])
    keep = [0, 1, 2, 3, 4, 6]  # the diverged seed 6 is in no pair
    d_compute = 100 * (np.array(SCORES["dup"])[keep] - np.array(SCORES["dup.compute"])[keep])
    d_random = 100 * (np.array(SCORES["dup"]) - SCORES["dup.random"])
    for label, d in (("base", d_base), ("compute-matched base", d_compute), ("random layers", d_random)):
        assert rows.loc[label, "delta"] == pytest.approx(d.mean()) and rows.loc[label, "n_pairs"] == d.size
        assert rows.loc[label, "delta_sd"] == pytest.approx(d.std(ddof=1))
    # the Holm family is every comparison x task: three tests here
    from layerlens import stats

    np.testing.assert_allclose(rows["p_seeds_holm"], stats.holm(rows["p_seeds"].to_numpy()))
    assert rows.loc["base", "p_seeds"] == pytest.approx(2 / 2 ** 7)  # seven positive differences
    assert rows.loc["base", "p_seeds_holm"] == pytest.approx(3 * 2 / 2 ** 7)
    # detectable: planned from the stated sd (1.0 x sqrt 2), not from the observed differences
    from statsmodels.stats.power import TTestPower

    dz = TTestPower().solve_power(nobs=7, alpha=0.05 / 3, power=0.8)
    assert rows.loc["base", "detectable"] == pytest.approx(dz * math.sqrt(2), rel=1e-5)
    # 6 pairs in a family of 3: 3 x 2/2^6 = 0.094, nothing could ever survive
    assert math.isinf(rows.loc["compute-matched base", "detectable"])
    # the GLUE table marks only what survives over seeds against the base
    assert significance.marks(sig) == {("dup", "rte"): significance.MARK_SEED}
    summary = glue.glue_summary(runs, bases, ["rte"])
    glue.write_glue_report(summary, sig, ["rte"], tmp_path / "g.csv", tmp_path / "g.md", tmp_path / "g.tex",
                           tmp_path / "s.csv", statistics={"planning_sd": {"rte": 1.0}})
    md = (tmp_path / "g.md").read_text()
    assert "compute-matched base (dup.compute)" in md and "random layers (dup.random)" in md
    assert "Holm family of 3 test(s) (3 comparison(s) x 1 task(s))" in md
