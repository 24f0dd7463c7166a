"""The report from fixture metrics, no model run: means, sds, paired deltas, averages, tables, figures."""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from layerlens import stats
from layerlens.report import collect, glue, output_change, significance, tables
from layerlens.report import cost as cost_report
from layerlens.report import probe as probe_report
from layerlens.report import runs as runs_report

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
    rng = np.random.default_rng(0)
    labels = {"rte": rng.integers(0, 2, 50), "mrpc": rng.integers(0, 2, 50)}
    for (model, task), by_seed in SCORES.items():
        for seed, score in by_seed.items():
            p = tmp_path / model / task / f"seed{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            diverged = math.isnan(score)  # as finetune writes it: null scores (strict JSON), diverged: true
            metric = {"rte": {"accuracy": score}, "mrpc": {"accuracy": score - 0.01, "f1": score + 0.01}}[task]
            p.write_text(json.dumps({"model": model, "task": task, "seed": seed,
                                     **{k: None if diverged else v for k, v in metric.items()},
                                     "main_score": None if diverged else score, "diverged": diverged,
                                     "train_seconds": 10.0 if model == "base" else 13.0,
                                     "train_tokens": 5000, "total_flos": 2e12, "device": "cpu",
                                     "n_train": 40, "n_eval": {"validation": 50},
                                     "hyperparameters": {"learning_rate": 1e-4, "epochs": 1,
                                                         "max_train_samples": None if task == "rte" else 40},
                                     "base": "base", "num_layers": 3 if model == "base" else 4,
                                     "layer_map": "0-2" if model == "base" else "0-2,2",
                                     "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
                                     "workflow_commit": "c0ffee" * 6 + "beef", "workflow_dirty": False}))
            y = labels[task]
            pred = np.where(rng.random(50) < (0.6 if model == "base" else 0.9), y, 1 - y)
            if diverged:  # NaN logits: their argmax is class 0 for every example
                pred = np.zeros_like(y)
            pd.DataFrame({"split": "validation", "idx": np.arange(50), "label": y, "prediction": pred}).to_csv(
                p.with_name("predictions.tsv"), sep="\t", index=False)
            (p.parent / "bench.tsv").write_text("s\th:m:s\tmax_rss\n%s\t0:00:30\t900.5\n"
                                                 % (3600.0 if model == "base" else 5400.0))
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
    runs = collect.collect_finetune(metrics_files)
    assert len(runs) == 12 and runs["diverged"].sum() == 1
    summary = glue.glue_summary(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"]).set_index(["model", "task"])

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


def test_compare_variant_with_base(metrics_files):
    runs = collect.collect_finetune(metrics_files)
    sig = significance.compare(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"], n_boot=500)
    rte = sig.set_index("task").loc["rte"]
    assert rte["delta"] == pytest.approx(np.mean([3.0, 1.0, 4.0]))
    assert rte["p_seeds"] == pytest.approx(0.25)  # 3 positive differences: 2/2^3
    assert rte["d_z"] == pytest.approx(np.mean([3, 1, 4]) / np.std([3, 1, 4], ddof=1))
    assert rte["against"] == "base"
    # planned a priori: 3 pairs in a family of 2 tests can never survive Holm (2 x 2/2^3 = 0.5), so nothing is
    # detectable, whatever the observed effect; the average is not in the family
    assert math.isinf(rte["detectable"]) and math.isnan(sig.set_index("task").loc["average", "detectable"])
    # the fixture's variant predictions are far more often right: a clear bootstrap effect on both tasks
    assert (sig.set_index("task").loc[["rte", "mrpc"], "boot_delta"] > 10).all()
    fam = sig[sig.task != "average"]
    np.testing.assert_allclose(fam["p_boot_holm"], stats.holm(fam["p_boot"].to_numpy()))
    np.testing.assert_allclose(fam["p_seeds_holm"], stats.holm(fam["p_seeds"].to_numpy()))
    assert sig.set_index("task").loc["average", "p_boot_holm"] != sig.set_index("task").loc["average", "p_boot_holm"]
    assert fam["survives_boot"].all() and not fam["survives_seeds"].any()


def _task_score(cell: Path, task: str) -> float:
    """The GLUE task score of one cell's predictions, with scikit-learn (MRPC: mean of F1 and accuracy)."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = pd.read_csv(cell / "predictions.tsv", sep="\t")
    acc = accuracy_score(pred["label"], pred["prediction"])
    return acc if task == "rte" else (acc + f1_score(pred["label"], pred["prediction"])) / 2


def test_bootstrap_uses_exactly_the_seeds_of_the_seed_level_test(metrics_files):
    """dup's MRPC seed 3 diverged (null score, class 0 everywhere): it enters neither test, on MRPC nor on the
    average. The bootstrap's delta on the full dev set is the mean over the seed-level test's seeds."""
    root = metrics_files[0].parents[3]
    runs = collect.collect_finetune(metrics_files)
    sig = significance.compare(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"], n_boot=50).set_index("task")

    def delta(task, seed):
        return 100 * (_task_score(root / "dup" / task / f"seed{seed}", task)
                      - _task_score(root / "base" / task / f"seed{seed}", task))

    assert sig.loc["mrpc", "n_pairs"] == 2 and sig.loc["average", "n_pairs"] == 2 and sig.loc["rte", "n_pairs"] == 3
    assert sig.loc["mrpc", "boot_delta"] == pytest.approx(np.mean([delta("mrpc", s) for s in (1, 2)]))
    assert sig.loc["average", "boot_delta"] == pytest.approx(
        np.mean([np.mean([delta(t, s) for t in ("rte", "mrpc")]) for s in (1, 2)]))
    assert sig.loc["rte", "boot_delta"] == pytest.approx(np.mean([delta("rte", s) for s in (1, 2, 3)]))


def _stsb_score(labels, preds) -> float:
    from scipy.stats import pearsonr, spearmanr

    return (pearsonr(preds, labels)[0] + spearmanr(preds, labels)[0]) / 2


@pytest.fixture
def degenerate_files(tmp_path):
    """Metrics computed from the predictions, as finetune does. dup's STS-B seed 2 predicts 2.5 everywhere (its
    correlations are undefined: null); base's RTE seed 3 predicts class 1 everywhere (its accuracy is defined)."""
    rng = np.random.default_rng(1)
    y = {"stsb": rng.uniform(0, 5, 80).round(2), "rte": rng.integers(0, 2, 80)}
    paths = []
    for model in ("base", "dup"):
        for task in ("stsb", "rte"):
            for seed in (1, 2, 3):
                if task == "stsb":
                    pred = y[task] + rng.normal(0, 1.0 if model == "base" else 0.6, 80)
                    if (model, seed) == ("dup", 2):
                        pred = np.full(80, 2.5)
                    score = None if np.ptp(pred) == 0 else _stsb_score(y[task], pred)
                else:
                    pred = np.where(rng.random(80) < (0.6 if model == "base" else 0.75), y[task], 1 - y[task])
                    if (model, seed) == ("base", 3):
                        pred = np.ones(80, dtype=int)
                    score = float(np.mean(pred == y[task]))
                cell = tmp_path / model / task / f"seed{seed}"
                cell.mkdir(parents=True)
                pd.DataFrame({"split": "validation", "idx": np.arange(80), "label": y[task], "prediction": pred}
                             ).to_csv(cell / "predictions.tsv", sep="\t", index=False)
                (cell / "metrics.json").write_text(json.dumps({
                    "model": model, "task": task, "seed": seed, "main_score": score, "diverged": False,
                    "degenerate": bool(np.ptp(pred) == 0), "train_seconds": 1.0, "train_tokens": 100}))
                paths.append(cell / "metrics.json")
    return paths


def test_degenerate_runs_counted_apart_from_diverged_and_scored_where_defined(degenerate_files, tmp_path):
    root = degenerate_files[0].parents[3]
    bases, tasks = {"base": "base", "dup": "base"}, ["stsb", "rte"]
    runs = collect.collect_finetune(degenerate_files)
    summary = glue.glue_summary(runs, bases, tasks).set_index(["model", "task"])

    def score(model, task, seed):
        pred = pd.read_csv(root / model / task / f"seed{seed}" / "predictions.tsv", sep="\t")
        if task == "stsb":
            return 100 * _stsb_score(pred["label"], pred["prediction"])
        return 100 * float(np.mean(pred["label"] == pred["prediction"]))

    stsb = summary.loc[("dup", "stsb")]  # the constant STS-B run: counted, shown, not averaged
    assert (stsb["n_seeds"], stsb["n_diverged"], stsb["n_degenerate"], stsb["n_scored"]) == (3, 0, 1, 2)
    assert stsb["mean"] == pytest.approx(np.mean([score("dup", "stsb", s) for s in (1, 3)]))
    rte = summary.loc[("base", "rte")]  # the constant classifier: a real score, averaged in
    assert (rte["n_seeds"], rte["n_diverged"], rte["n_degenerate"], rte["n_scored"]) == (3, 0, 1, 3)
    assert rte["mean"] == pytest.approx(np.mean([score("base", "rte", s) for s in (1, 2, 3)]))
    avg = summary.loc[("dup", "average")]
    assert (avg["n_diverged"], avg["n_degenerate"], avg["n_scored"]) == (0, 1, 2)

    sig = significance.compare(runs, bases, tasks, n_boot=50).set_index("task")
    assert sig.loc["stsb", "n_pairs"] == 2 and sig.loc["rte", "n_pairs"] == 3
    assert sig.loc["stsb", "boot_delta"] == pytest.approx(
        np.mean([score("dup", "stsb", s) - score("base", "stsb", s) for s in (1, 3)]))
    assert sig.loc["rte", "boot_delta"] == pytest.approx(
        np.mean([score("dup", "rte", s) - score("base", "rte", s) for s in (1, 2, 3)]))

    glue.write_glue_report(summary.reset_index(), sig.reset_index(), tasks, tmp_path / "g.csv", tmp_path / "g.md",
                           tmp_path / "g.tex", tmp_path / "s.csv")
    md = (tmp_path / "g.md").read_text()
    assert "(1 degenerate)" in md and not re.search(r"\d+ diverged", md)
    assert "Degenerate runs" in md
    assert list(pd.read_csv(tmp_path / "g.csv").columns[3:7]) == ["n_seeds", "n_diverged", "n_degenerate", "n_scored"]
    check_latex((tmp_path / "g.tex").read_text(), tmp_path)


def _runs(metrics_files):
    """The tidy table of the fixture's runs, with each cell's benchmark file."""
    return runs_report.runs_table(metrics_files, [p.parent / "bench.tsv" for p in metrics_files])


def test_cost_table(metrics_files):
    runs = _runs(metrics_files)
    bases = {"base": "base", "dup": "base"}
    summary = glue.glue_summary(runs, bases, ["rte", "mrpc"])
    cost = cost_report.cost_table(runs, summary, bases).set_index(["model", "task"])
    assert cost.loc[("base", "rte"), "wall_h_per_run"] == pytest.approx(1.0)
    assert cost.loc[("dup", "rte"), "extra_h_per_run"] == pytest.approx(0.5)
    assert cost.loc[("dup", "rte"), "extra_h_resolved"]  # no spread over seeds: any difference is resolved
    gain = np.mean([63, 65, 66]) - np.mean([60, 64, 62])
    assert cost.loc[("dup", "rte"), "points_per_extra_hour"] == pytest.approx(gain / 0.5)
    assert cost.loc[("base", "rte"), "train_tokens_per_s"] == pytest.approx(500.0)
    assert cost.loc[("base", "rte"), "tflops_per_run"] == pytest.approx(2.0)
    assert cost.loc[("base", "rte"), "peak_rss_gb"] == pytest.approx(900.5 / 1024)


def test_cost_below_the_timing_resolution_prints_no_negative_hours(metrics_files, tmp_path):
    """Wall times that differ by less than their noise: no extra hours and no points per hour are claimed, and the
    table says so; the resolution is the 95% Welch interval's half-width, computed here by hand."""
    walls = {("base", 1): 100.0, ("base", 2): 160.0, ("base", 3): 130.0,
             ("dup", 1): 120.0, ("dup", 2): 110.0, ("dup", 3): 135.0}
    for p in metrics_files:
        model, seed = p.parts[-4], int(p.parts[-2][4:])
        (p.parent / "bench.tsv").write_text(f"s\th:m:s\tmax_rss\n{walls[(model, seed)]}\t0:00:30\t900.5\n")
    runs = _runs(metrics_files)
    bases = {"base": "base", "dup": "base"}
    cost = cost_report.cost_table(runs, glue.glue_summary(runs, bases, ["rte", "mrpc"]), bases)
    rte = cost.set_index(["model", "task"]).loc[("dup", "rte")]
    b, v = np.array([100.0, 160.0, 130.0]) / 3600, np.array([120.0, 110.0, 135.0]) / 3600
    assert rte["extra_h_per_run"] == pytest.approx(v.mean() - b.mean())  # negative: noise
    qv, qb = v.var(ddof=1) / 3, b.var(ddof=1) / 3
    df = (qv + qb) ** 2 / (qv ** 2 / 2 + qb ** 2 / 2)  # Welch-Satterthwaite
    assert rte["extra_h_resolution"] == pytest.approx(scipy.stats.t.ppf(0.975, df) * np.sqrt(qv + qb))
    assert not rte["extra_h_resolved"] and math.isnan(rte["points_per_extra_hour"])
    assert rte["extra_flops_pct"] == pytest.approx(0.0)  # the fixture gives both models the same FLOPs
    cost_report.write_cost_report(cost, tmp_path / "c.csv", tmp_path / "c.md")
    md = (tmp_path / "c.md").read_text()
    assert "below resolution (±0.0" in md and not re.search(r"\|\s*-\d", md)  # no negative cell anywhere


def test_written_tables_and_figures(metrics_files, tmp_path):
    runs = collect.collect_finetune(metrics_files)
    summary = glue.glue_summary(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"])
    sig = significance.compare(runs, {"base": "base", "dup": "base"}, ["rte", "mrpc"], n_boot=200)
    glue.write_glue_report(summary, sig, ["rte", "mrpc"], tmp_path / "glue.csv", tmp_path / "glue.md",
                             tmp_path / "glue.tex", tmp_path / "sig.csv")
    md = (tmp_path / "glue.md").read_text()
    assert "2/2^3 = 0.25; after Holm over 2 tests, 0.5" in md and "FAILS: no difference can survive" in md
    # the recipe-level test leads; the bootstrap over dev examples follows, labelled for what it is
    header = next(line for line in md.splitlines() if "p seeds (Holm)" in line)
    assert header.index("p seeds (Holm)") < header.index("these checkpoints: Δ [95% CI]")
    assert "these checkpoints on this dev set" in md
    tex = (tmp_path / "glue.tex").read_text()
    assert "\\toprule" in tex and "\\textbf{62.00 $\\pm$ 2.00}" not in tex  # base RTE is not the best
    # the variant's RTE is; its bootstrap p survives Holm, but that speaks of these checkpoints: no mark
    assert "\\textbf{64.67 $\\pm$ 1.53}" in tex
    check_latex(tex, tmp_path)
    assert re.search(r"\|\s*base\s*\|\s*3\s*\|\s*62\.00 ± 2\.00\s*\|", md)
    assert "+2.67 ± 1.53" in md  # dup - base on RTE
    assert "(1 diverged)" in md
    back = pd.read_csv(tmp_path / "glue.csv")
    assert set(back["task"]) == {"rte", "mrpc", "average"}
    glue.plot_glue_deltas(summary, ["rte", "mrpc"], [tmp_path / "d.png", tmp_path / "d.pdf"])
    assert (tmp_path / "d.png").stat().st_size > 1000 and (tmp_path / "d.pdf").read_bytes()[:4] == b"%PDF"


def check_latex(tex: str, tmp_path) -> None:
    """Compile with pdflatex when installed (CI installs it); otherwise parse it with pylatexenc."""
    if shutil.which("pdflatex"):
        doc = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex + "\\end{document}\n"
        (tmp_path / "t.tex").write_text(doc)
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]
        assert (tmp_path / "t.pdf").stat().st_size > 1000
    else:
        pylatexenc = pytest.importorskip("pylatexenc.latexwalker", reason="neither pdflatex nor pylatexenc")
        nodes, _, _ = pylatexenc.LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()
        envs = [n.environmentname for n in nodes if n.isNodeType(pylatexenc.LatexEnvironmentNode)]
        assert envs == ["table"]


def _probe_rows() -> pd.DataFrame:
    """Both modes; the head reading and the identity control (a mode's rows: head rows, then control rows)."""
    rows = []
    for model, depth in (("base", 3), ("dup", 4)):
        for mode, shift in (("input", 0.0), ("masked", 0.5)):
            for reading, head, scale in (("head", "pretrained", 1.0), ("embeddings", "none", 0.5)):
                for layer in range(depth + 1):  # dup: layers "0-2,2": its layer 4 is a 2nd copy of layer 2
                    top1 = scale * (0.9 - 0.1 * layer) - shift * (reading == "head") * 0.5
                    rows.append({"model": model, "mode": mode, "reading": reading, "head": head, "layer": layer,
                                 "source_layer": min(layer, 3), "top1": top1, "top1_lo": top1 - 0.05,
                                 "top1_hi": top1 + 0.05,
                                 "top5": 0.95, "cross_entropy": 1.0 + layer, "entropy": 2.0, "mrr": 0.7,
                                 "median_rank": 1.0, "ece": 0.1, "ece_bins": 3, "agree_last": 0.5, "kl_last": 0.1,
                                 "n_tokens": 100 if mode == "input" else 15, "n_sentences": 10})
    return pd.DataFrame(rows)


def test_probe_report(tmp_path):
    rows = _probe_rows()
    csvs = []
    for model in ("base", "dup"):
        p = tmp_path / f"{model}.csv"
        rows[rows.model == model].to_csv(p, index=False)
        csvs.append(p)
    probe = collect.collect_probe(csvs)
    probe_report.write_probe_report(probe, tmp_path / "probe.csv", tmp_path / "probe.md", tmp_path / "probe.tex")
    check_latex((tmp_path / "probe.tex").read_text(), tmp_path)
    md = (tmp_path / "probe.md").read_text()
    input_part, masked_part = md.split("## masked mode")
    row = r"\|\s*base · {}\s*\|\s*{}\s*\|\s*{}\s*\|\s*{}\s*\|\s*{}\s*\|\s*\|"
    assert re.search(row.format("pretrained", "0.900", "0.800", "0.700", "0.600"), input_part)
    assert re.search(row.format("embeddings", "0.450", "0.400", "0.350", "0.300"), input_part)
    assert re.search(row.format("pretrained", "0.650", "0.550", "0.450", "0.350"), masked_part)
    assert "Scored positions per model: base: 15, dup: 15." in masked_part
    assert len(pd.read_csv(tmp_path / "probe.csv")) == 2 * 2 * (4 + 5)
    probe_report.plot_probe_family(probe, "base", ["dup"], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def _change_rows() -> pd.DataFrame:
    return pd.DataFrame([{"variant": f"b-{k}{i}", "base": "b", "layers": "", "kind": kind, "touched": str(i),
                          "first_touched": i, "kl": 0.01 * (i + 1), "agree_top1": 0.9, "agree_lo": 0.88,
                          "agree_hi": 0.92, "top1_base": 0.8, "top1_variant": 0.79, "n_tokens": 100, "n_sentences": 10}
                         for kind, k in (("duplicate", "dup"), ("remove", "rm")) for i in range(3)])


def test_output_change_report(tmp_path):
    change = _change_rows()
    output_change.write_change_report(change, tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.tex")
    assert "0.900 [0.880, 0.920]" in (tmp_path / "c.md").read_text()
    check_latex((tmp_path / "c.tex").read_text(), tmp_path)
    output_change.plot_output_change(change, [tmp_path / "c.png", tmp_path / "c.pdf"])
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_latex_writer_escapes_marks_symbols_and_bolds_the_best_by_number(tmp_path):
    """Hand-written expectations: Styler's escaping, the symbols pdflatex lacks, bold by value not by text."""
    shown = pd.DataFrame({"a_b": ["9.00 ± 1.00†", "10.00 ± 2.00*"], "50%": ["∞", "Δ & #1"]}, index=["m_1", "m&2"])
    rank = pd.DataFrame({"a_b": [9.0, 10.0], "50%": [float("nan"), 3.0]}, index=shown.index)  # "9..." > "10..." as text
    tex = tables.latex(shown, rank_by=rank, axis=0, caption="A caption.", label="tab:x")
    assert "\\begin{table}[htbp]" in tex and "\\caption{A caption.}" in tex and "\\label{tab:x}" in tex
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "{lrr}" in tex
    assert " & a\\_b & 50\\% \\\\" in tex
    assert "m\\_1 & 9.00 $\\pm$ 1.00\\textdagger{} & $\\infty$ \\\\" in tex
    assert "m\\&2 & \\textbf{10.00 $\\pm$ 2.00*} & \\textbf{$\\Delta$ \\& \\#1} \\\\" in tex
    for raw in ("±", "†", "Δ", "∞"):
        assert raw not in tex
    check_latex(tex, tmp_path)
    by_row = tables.latex(shown, rank_by=rank, axis=1, caption="c", label="l")
    assert "m\\_1 & \\textbf{9.00" in by_row and "m\\&2 & \\textbf{10.00" in by_row  # NaN is never best


FIGURES = {
    "probe": lambda df, paths: probe_report.plot_probe(df["probe"][df["probe"].model == "base"], paths),
    "probe_family": lambda df, paths: probe_report.plot_probe_family(df["probe"], "base", ["dup"], paths),
    "glue_deltas": lambda df, paths: glue.plot_glue_deltas(df["summary"], ["rte", "mrpc"], paths),
    "output_change": lambda df, paths: output_change.plot_output_change(df["change"], paths),
}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_png_and_pdf_from_one_drawing(name, metrics_files, tmp_path):
    """PNG and PDF of a figure have the same size (PNG pixels / dpi = PDF points / 72) and the one dpi."""
    from PIL import Image

    data = {"probe": _probe_rows(), "change": _change_rows(),
            "summary": glue.glue_summary(collect.collect_finetune(metrics_files), {"base": "base", "dup": "base"},
                                         ["rte", "mrpc"])}
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    FIGURES[name](data, [png, pdf])
    with Image.open(png) as im:
        width_px, height_px = im.size
        dpi = im.info["dpi"][0]
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    width_pt, height_pt = float(box.group(1)), float(box.group(2))
    assert dpi == pytest.approx(150, abs=0.5)
    assert width_px / dpi == pytest.approx(width_pt / 72, abs=0.02)
    assert height_px / dpi == pytest.approx(height_pt / 72, abs=0.02)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_runs_table_round_trips_through_pandas_and_datasets(metrics_files, tmp_path):
    """One row per cell with the values its metrics.json and benchmark file hold (read here with json and csv),
    the columns of collect_finetune among them; the parquet and CSV files load back the same in pandas and in
    datasets."""
    import csv

    import datasets

    table = _runs(metrics_files)
    assert len(table) == len(metrics_files) == 12
    assert set(collect.RUN_COLUMNS) <= set(table.columns)
    for p, row in zip(metrics_files, table.itertuples()):
        m = json.loads(p.read_text())
        with open(p.parent / "bench.tsv") as fh:
            bench = next(csv.DictReader(fh, delimiter="\t"))
        assert (row.model, row.task, row.seed) == (m["model"], m["task"], m["seed"])
        assert row.layer_map == m["layer_map"] and row.num_layers == m["num_layers"] and row.base == "base"
        assert row.wall_s == float(bench["s"]) and row.max_rss_mb == float(bench["max_rss"])
        assert row.torch == "2.13.0" and row.transformers == "5.24.0" and row.workflow_commit == m["workflow_commit"]
        assert row.hp_learning_rate == 1e-4 and row.n_eval == 50
        if m["diverged"]:
            assert row.diverged and math.isnan(row.accuracy)
        else:
            assert row.accuracy == m["accuracy"] and (math.isnan(row.f1) if m["task"] == "rte" else row.f1 == m["f1"])
    runs_report.write_runs(table, tmp_path / "runs.parquet", tmp_path / "runs.csv")
    back = pd.read_parquet(tmp_path / "runs.parquet")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    missing_as_nan = table.astype(object).where(table.notna(), np.nan)  # CSV has one empty value for both
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "runs.csv").astype(object), missing_as_nan,
                                  check_dtype=False)
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "runs.parquet"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.column_names == list(table.columns) and ds.num_rows == 12
    pd.testing.assert_frame_equal(ds.to_pandas(), back, check_dtype=False)
    # the GLUE summary computed from the file is the one computed from the metrics files
    bases = {"base": "base", "dup": "base"}
    pd.testing.assert_frame_equal(glue.glue_summary(back, bases, ["rte", "mrpc"]),
                                  glue.glue_summary(collect.collect_finetune(metrics_files), bases, ["rte", "mrpc"]))


def _drawn(name, data, monkeypatch, tmp_path):
    """Draw figure ``name`` of FIGURES (or ``name(paths)``, a callable) and return the matplotlib figure as it was
    saved, laid out."""
    from layerlens.report import figures

    kept = []
    real = figures.save_figure

    def save(fig, paths):
        real(fig, paths)
        fig.canvas.draw()  # laid out as saved, while the figure still has its Agg canvas
        fig.kept_renderer = fig.canvas.get_renderer()
        kept.append(fig)

    monkeypatch.setattr(figures, "save_figure", save)
    if callable(name):
        name(tmp_path / "f.png")
    else:
        FIGURES[name](data, [tmp_path / f"{name}.png"])
    return kept[0]


def _luminance(colour) -> float:
    """WCAG relative luminance of an RGB(A) colour, computed by hand."""
    from matplotlib.colors import to_rgb

    c = np.array(to_rgb(colour))
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_reads_at_a_glance(name, metrics_files, monkeypatch, tmp_path):
    """Nothing drawn outside the figure (no clipped title or legend), and every line, marker and bar has a
    contrast of at least 3:1 against the white background (WCAG's figure for graphics; the palette's yellow
    was 1.1:1)."""
    import matplotlib.pyplot as plt
    from layerlens.report import figures
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    data = {"probe": _probe_rows(), "change": _change_rows(),
            "summary": glue.glue_summary(collect.collect_finetune(metrics_files), {"base": "base", "dup": "base"},
                                         ["rte", "mrpc"])}
    fig = _drawn(name, data, monkeypatch, tmp_path)
    renderer = fig.kept_renderer
    box = fig.bbox
    texts = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    texts += [fig._suptitle] if fig._suptitle is not None else []
    texts += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for t in texts:
        e = t.get_window_extent(renderer)
        assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, t
    for ax in fig.axes:
        colours = [ln.get_color() for ln in ax.get_lines() if ln.get_visible() and len(ln.get_xdata())]
        colours += [p.get_facecolor() for p in ax.patches if isinstance(p, Rectangle) and p.get_height()]
        with plt.rc_context(figures.STYLE):  # "C0" etc. are the style's colours
            for c in colours:
                assert (1.05) / (_luminance(c) + 0.05) >= 3.0, (name, c)
    assert all(isinstance(ln, Line2D) for ax in fig.axes for ln in ax.get_lines())


def test_probe_figures_mark_the_duplicated_layers_and_say_what_the_band_is(monkeypatch, tmp_path):
    """dup copies base layer 2 twice (its layers 3 and 4): its layer 4 is circled, in the per-model figure and in
    the family figure (at relative depth 4/4); the band's legend names the bootstrap interval."""
    probe = _probe_rows()
    fig = _drawn(lambda path: probe_report.plot_probe(probe[probe.model == "dup"], path), None, monkeypatch, tmp_path)
    ax = fig.axes[0]
    circled = [c.get_offsets() for c in ax.collections if len(c.get_offsets()) and not len(c.get_facecolor())]
    assert [list(map(float, xy)) for xy in circled[0]] == [[4.0, pytest.approx(0.5)]]
    assert "95% bootstrap interval over examples" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    fig = _drawn("probe_family", {"probe": probe}, monkeypatch, tmp_path)
    circled = [c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets()) and not len(c.get_facecolor())]
    assert [list(map(float, xy)) for xy in circled[0]] == [[1.0, pytest.approx(0.5)]]


def test_glue_deltas_draw_no_error_bar_from_one_seed(metrics_files, monkeypatch, tmp_path):
    runs = collect.collect_finetune(metrics_files)
    bases = {"base": "base", "dup": "base"}
    three = _drawn("glue_deltas", {"summary": glue.glue_summary(runs, bases, ["rte", "mrpc"])}, monkeypatch, tmp_path)
    assert [c for c in three.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]
    assert "sd of the per-seed differences" in three.axes[0].get_title()
    one = _drawn("glue_deltas", {"summary": glue.glue_summary(runs[runs.seed == 1], bases, ["rte", "mrpc"])},
                 monkeypatch, tmp_path)
    ax = one.axes[0]
    assert not [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert "one seed: no error bars" in ax.get_title() and "removing" not in ax.get_title()


def test_output_change_points_are_not_joined_and_ticks_are_layers(monkeypatch, tmp_path):
    fig = _drawn("output_change", {"change": _change_rows()}, monkeypatch, tmp_path)
    for ax in fig.axes:
        for ln in ax.get_lines():
            if len(ln.get_xdata()) > 1 and ln.get_marker() not in ("None", "", None):
                assert ln.get_linestyle() in ("None", "none", ""), "separate variants joined by a line"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert ax.get_legend() is not None
    # both kinds were run, so the title names both
    assert "duplicating or removing" in fig._suptitle.get_text()
    only_dup = _change_rows()[lambda d: d.kind == "duplicate"]
    fig = _drawn("output_change", {"change": only_dup}, monkeypatch, tmp_path)
    assert "removing" not in fig._suptitle.get_text()
