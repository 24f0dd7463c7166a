"""The report from fixture metrics, no model run: means, sds, paired deltas, averages, tables, figures."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from layerlens import report, stats

# main scores (fractions) per model, task, seed
SCORES = {
    ("base", "rte"): {1: 0.60, 2: 0.64, 3: 0.62},
    ("base", "mrpc"): {1: 0.80, 2: 0.86, 3: 0.83},
    ("dup", "rte"): {1: 0.63, 2: 0.65, 3: 0.66},
    ("dup", "mrpc"): {1: 0.81, 2: 0.85, 3: float("nan")},
}


@pytest.fixture
def metrics_files(tmp_path):
    paths = []
    for (model, task), by_seed in SCORES.items():
        for seed, score in by_seed.items():
            p = tmp_path / model / task / f"seed{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps({"model": model, "task": task, "seed": seed, "main_score": score,
                                     "diverged": math.isnan(score), "train_seconds": 1.0}))
            paths.append(p)
    return paths


def test_summarize_by_hand():
    s = stats.summarize([1.0, 2.0, 4.0])
    assert s.n == 3 and s.mean == pytest.approx(7 / 3)
    assert s.sd == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    half = 4.302652729911275 * s.sd / math.sqrt(3)  # t(0.975, df=2) from tables
    assert s.ci_lo == pytest.approx(7 / 3 - half) and s.ci_hi == pytest.approx(7 / 3 + half)
    assert stats.summarize([float("nan"), 3.0]).n == 1
    assert math.isnan(stats.summarize([]).mean)


def test_glue_summary_from_fixture(metrics_files):
    runs = report.collect_finetune(metrics_files)
    assert len(runs) == 12 and runs["diverged"].sum() == 1
    summary = report.glue_summary(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"]).set_index(["model", "task"])

    rte = summary.loc[("base", "rte")]
    assert rte["mean"] == pytest.approx(62.0) and rte["sd"] == pytest.approx(2.0)
    assert rte["n_seeds"] == 3 and rte["n_diverged"] == 0

    dup_mrpc = summary.loc[("dup", "mrpc")]  # seed 3 diverged: shown, not averaged
    assert dup_mrpc["n_diverged"] == 1 and dup_mrpc["mean"] == pytest.approx(83.0)
    # paired by seed: seeds 1 and 2 only
    assert dup_mrpc["delta_mean"] == pytest.approx(((81 - 80) + (85 - 86)) / 2)
    assert dup_mrpc["delta_n"] == 2

    dup_rte = summary.loc[("dup", "rte")]
    deltas = np.array([3.0, 1.0, 4.0])
    assert dup_rte["delta_mean"] == pytest.approx(deltas.mean())
    assert dup_rte["delta_sd"] == pytest.approx(deltas.std(ddof=1))

    # the average is per seed over tasks: base seeds 1-3 -> 70, 75, 72.5
    avg = summary.loc[("base", "average")]
    assert avg["mean"] == pytest.approx(np.mean([70, 75, 72.5]))
    assert avg["sd"] == pytest.approx(np.std([70, 75, 72.5], ddof=1))
    assert math.isnan(summary.loc[("base", "rte")]["delta_mean"])


def test_written_tables_and_figures(metrics_files, tmp_path):
    runs = report.collect_finetune(metrics_files)
    summary = report.glue_summary(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"])
    report.write_glue_report(summary, ["rte", "mrpc"], tmp_path / "glue.csv", tmp_path / "glue.md")
    md = (tmp_path / "glue.md").read_text()
    assert re.search(r"\|\s*base\s*\|\s*3\s*\|\s*62\.00 ± 2\.00\s*\|", md)
    assert "+2.67 ± 1.53" in md  # dup - base on RTE
    assert "(1 diverged)" in md
    back = pd.read_csv(tmp_path / "glue.csv")
    assert set(back["task"]) == {"rte", "mrpc", "average"}
    report.plot_glue_deltas(summary, ["rte", "mrpc"], tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 1000


def test_probe_report(tmp_path):
    rows = []
    for model, depth in (("base", 3), ("dup", 4)):
        for layer in range(depth + 1):
            rows.append({"model": model, "layer": layer, "source_layer": layer, "top1": 0.9 - 0.1 * layer,
                         "top1_lo": 0.85 - 0.1 * layer, "top1_hi": 0.95 - 0.1 * layer, "top5": 0.95,
                         "cross_entropy": 1.0 + layer, "agree_last": 0.5, "kl_last": 0.1, "n_tokens": 100,
                         "n_sentences": 10, "head": "pretrained"})
    csvs = []
    for model in ("base", "dup"):
        p = tmp_path / f"{model}.csv"
        pd.DataFrame([r for r in rows if r["model"] == model]).to_csv(p, index=False)
        csvs.append(p)
    probe = report.collect_probe(csvs)
    report.write_probe_report(probe, tmp_path / "probe.csv", tmp_path / "probe.md")
    md = (tmp_path / "probe.md").read_text()
    assert re.search(r"\|\s*base\s*\|\s*0\.900\s*\|\s*0\.800\s*\|\s*0\.700\s*\|\s*0\.600\s*\|\s*\|", md)
    assert len(pd.read_csv(tmp_path / "probe.csv")) == 9
    report.plot_probe_family(probe, "base", ["dup"], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
