"""The design check against independent computations: the sign-flip floor by hand, Holm's first step by hand,
the power solvers against statsmodels, the measured sd against numpy; and on the shipped configs."""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from helpers import REPO
from layerlens import config as llconfig
from layerlens import design, grid, stats
from statsmodels.stats.power import TTestPower


@pytest.mark.parametrize("n", [3, 6, 9, 10, 12])
@pytest.mark.parametrize("m", [1, 4, 12, 24])
def test_holm_floor_and_seeds_to_survive_by_hand(n, m):
    # all n differences of one sign: the most extreme of the 2^n sign patterns, and its mirror image
    floor = 2 / 2 ** n
    assert stats.sign_flip_test([1.0] * n) == pytest.approx(floor)
    # Holm's first step multiplies the smallest p by m; every adjusted p is at least that
    assert stats.holm_floor(n, m) == pytest.approx(min(1.0, m * floor))
    assert stats.holm([floor] + [1.0] * (m - 1))[0] == pytest.approx(min(1.0, m * floor))
    need = next(k for k in range(2, 40) if m * 2 / 2 ** k < 0.05)
    assert stats.min_seeds_holm(m, 0.05) == need
    d = design.plan(n, m, ["mrpc"], {"alpha": 0.05, "power": 0.8})
    assert d.n_tests == m and d.passes == (m * floor < 0.05) and d.seeds_to_survive == need
    assert math.isinf(d.tasks[0].detectable) != d.passes


def test_the_numbers_of_the_issue():
    """3 seeds: smallest p 0.25; 4 tasks x 3 variants = 12 tests need 9 seeds before anything can survive."""
    assert stats.sign_flip_floor(3) == 0.25
    assert stats.min_seeds_holm(12) == 9 and stats.min_seeds_holm(1) == 6 and stats.min_seeds_holm(24) == 10
    assert math.isinf(stats.min_seeds_holm(10_000))  # the Monte Carlo floor 2/(1 + 100,000) times m


@pytest.mark.parametrize("n, alpha", [(5, 0.05), (10, 0.05 / 24), (20, 0.05 / 12), (40, 0.01)])
def test_detectable_effect_matches_statsmodels(n, alpha):
    expected = TTestPower().solve_power(nobs=n, alpha=alpha, power=0.8, alternative="two-sided")
    assert stats.detectable_effect(n, alpha, 0.8) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("dz, alpha", [(0.5, 0.05), (0.8, 0.05), (1.0, 0.05), (0.3, 0.05 / 24), (0.02, 0.05)])
def test_seeds_for_effect_matches_statsmodels_and_is_fast_and_finite(dz, alpha):
    started = time.perf_counter()
    n = stats.seeds_for_effect(dz, alpha, 0.8)
    assert time.perf_counter() - started < 1.0
    exact = TTestPower().solve_power(effect_size=dz, alpha=alpha, power=0.8, alternative="two-sided")
    assert n == math.ceil(exact)
    assert stats.paired_t_power(dz, n, alpha) >= 0.8 > stats.paired_t_power(dz, n - 1, alpha)
    if (dz, alpha) == (0.5, 0.05):
        assert n == 34  # G*Power, one-sample t-test, two-tailed, alpha .05, power .80
    assert stats.seeds_for_effect(0.0) == math.inf


def test_detectable_difference_in_points():
    """plan(): d_z from statsmodels at alpha / m, times the stated sd x sqrt 2 (two runs per difference)."""
    d = design.plan(20, 6, ["mrpc", "rte"], {"alpha": 0.05, "power": 0.8, "planning_sd": {"rte": 3.0}})
    dz = TTestPower().solve_power(nobs=20, alpha=0.05 / 12, power=0.8)
    mrpc, rte = d.tasks
    assert mrpc.detectable == pytest.approx(dz * 1.61 * math.sqrt(2), rel=1e-5)
    assert rte.detectable == pytest.approx(dz * 3.0 * math.sqrt(2), rel=1e-5)
    assert "planning_sd" in rte.source and "IBM" in mrpc.source


def _write_run(root, model, task, seed, score, diverged=False):
    p = root / "finetune" / model / task / f"seed{seed}" / "metrics.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"main_score": None if diverged else score, "diverged": diverged}))


def test_measured_sd_pools_the_paired_differences(tmp_path):
    cfg = llconfig.validate({"models": {"m": {"source": "org/m"}}, "tasks": ["mrpc"], "seeds": [1, 2, 3, 4],
                             "variants": {"v": {"base": "m", "duplicate": [1]}, "w": {"base": "m", "remove": [1]}}})
    scores = {"m": [0.80, 0.84, 0.82, 0.86], "v": [0.81, 0.86, 0.85, 0.85], "w": [0.79, 0.80, 0.83, 0.80]}
    for model, values in scores.items():
        for seed, s in enumerate(values, 1):
            _write_run(tmp_path, model, "mrpc", seed, s, diverged=(model == "w" and seed == 4))
    dv = 100 * (np.array(scores["v"]) - scores["m"])
    dw = 100 * (np.array(scores["w"][:3]) - scores["m"][:3])  # seed 4 of w diverged: not a pair
    pooled = math.sqrt((np.var(dv, ddof=1) * 3 + np.var(dw, ddof=1) * 2) / 5)
    sd, df = design.measured_sd(cfg, tmp_path)["mrpc"]
    assert df == 5 and sd == pytest.approx(pooled)
    d = design.check(cfg, tmp_path)
    assert d.tasks[0].sd_diff == pytest.approx(pooled) and "measured" in d.tasks[0].source


def test_the_shipped_paper_config_passes_and_its_family_is_the_reports():
    cfg = llconfig.load(REPO / "configs" / "paper.yaml", workdir=REPO)
    d = design.check(cfg, REPO / "no-results-here")
    assert d.passes
    assert d.n_tests == len(grid.comparisons(cfg)) * len(cfg["tasks"])
    labels = {label for _, _, label in grid.comparisons(cfg)}
    assert labels == {"base", "compute-matched base", "random layers", "frozen encoder"}  # controls included
    assert d.holm_floor < cfg["statistics"]["alpha"]


def test_the_config_check_prints_the_design_and_says_plainly_when_nothing_can_survive(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    cfg["seeds"] = [1, 2, 3]
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "layerlens.config", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Holm family of 24 test(s) (6 comparison(s) x 4 task(s))" in out
    assert "2/2^3 = 0.25; after Holm over 24 tests, 1." in out
    assert "FAILS: no difference can survive" in out and "at least 10 seeds" in out
    good = subprocess.run([sys.executable, "-m", "layerlens.config", str(REPO / "configs" / "paper.yaml")],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"})
    assert "PASSES" in good.stdout and "points" in good.stdout
