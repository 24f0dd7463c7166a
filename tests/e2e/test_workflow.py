"""End to end: snakemake on a tiny BERT and tiny GLUE folders, checking every output and its numbers."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from helpers import REPO, make_tiny_bert

pytestmark = pytest.mark.e2e


def snakemake(workdir, *args, timeout=1800):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def write_config(workdir, glue_dir, **finetune):
    make_tiny_bert(workdir / "tiny-bert", layers=3, train_steps=30)
    cfg = {
        "models": {"tiny": {"source": "./tiny-bert"}},
        "variants": {"tiny-dup2": {"base": "tiny", "layers": "0-2,2"}},
        "glue": {"source": "tsv", "dir": str(glue_dir)},
        "tasks": ["rte", "mrpc"],
        "seeds": [1, 2],
        "probe": {"sentences": 60, "max_length": 48, "bootstrap": 200},
        "finetune": {"batch_size": 8, "epochs": 1, "max_length": 64, "learning_rate": 1e-3, "logging_steps": 5,
                     **finetune},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def check_outputs(workdir, cfg, n_eval):
    models = ["tiny", "tiny-dup2"]
    res = workdir / "results"
    manifest = json.loads((workdir / "resources" / "manifest.json").read_text())
    assert set(manifest["models"]) == {"tiny"} and set(manifest["glue"]) == {"rte", "mrpc"}

    for model, depth in (("tiny", 3), ("tiny-dup2", 4)):
        probe = pd.read_csv(res / "probe" / f"{model}.csv")
        assert list(probe["layer"]) == list(range(depth + 1))
        assert probe[["top1", "top5", "agree_last"]].apply(lambda c: c.between(0, 1)).all().all()
        assert (probe["top1"] <= probe["top5"]).all() and probe["agree_last"].iloc[-1] == 1.0
        assert (probe["cross_entropy"] > 0).all() and probe["n_tokens"].iloc[0] > 100
        assert (res / "probe" / f"{model}.png").stat().st_size > 1000
    assert list(pd.read_csv(res / "probe" / "tiny-dup2.csv")["source_layer"]) == [0, 1, 2, 3, 3]

    for model in models:
        for task in cfg["tasks"]:
            for seed in cfg["seeds"]:
                cell = res / "finetune" / model / task / f"seed{seed}"
                m = json.loads((cell / "metrics.json").read_text())
                assert (m["model"], m["task"], m["seed"]) == (model, task, seed)
                assert 0 <= m["accuracy"] <= 1 and 0 <= m["main_score"] <= 1
                if task == "mrpc":
                    assert 0 <= m["f1"] <= 1
                pred = pd.read_csv(cell / "predictions.tsv", sep="\t")
                assert len(pred) == n_eval[task] == sum(m["n_eval"].values())
                assert (res / "benchmarks" / "finetune" / model / task / f"seed{seed}.tsv").is_file()
                assert (res / "logs" / "finetune" / model / task / f"seed{seed}.log").stat().st_size > 0

    glue = pd.read_csv(res / "report" / "glue.csv")
    assert set(glue["model"]) == set(models) and set(glue["task"]) == {"rte", "mrpc", "average"}
    assert (glue["n_seeds"] == 2).all()
    assert glue[glue.model == "tiny-dup2"]["delta_mean"].notna().all()
    md = (res / "report" / "glue.md").read_text()
    assert "tiny-dup2" in md and "±" in md
    probe_all = pd.read_csv(res / "report" / "probe.csv")
    assert set(probe_all["model"]) == set(models)
    for f in ("probe.md", "glue_deltas.png", "probe_tiny.png"):
        assert (res / "report" / f).stat().st_size > 100


def test_workflow_on_tiny_fixtures(tmp_path, tiny_glue):
    cfg = write_config(tmp_path, tiny_glue)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check_outputs(tmp_path, cfg, n_eval={"rte": 24, "mrpc": 24})

    # a finished workflow has nothing left to do
    again = snakemake(tmp_path, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # the HTML report with every table and figure
    rep = snakemake(tmp_path, "--report", "report.html")
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10_000


@pytest.mark.realdata
def test_workflow_on_real_glue(tmp_path, shared_glue):
    cfg = write_config(tmp_path, shared_glue, max_train_samples=64, max_eval_samples=80)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check_outputs(tmp_path, cfg, n_eval={"rte": 80, "mrpc": 80})
    sentences = pd.read_csv(tmp_path / "results" / "probe" / "sentences.tsv", sep="\t")
    assert len(sentences) == 60 and set(sentences["task"]) == {"rte", "mrpc"}


def test_dry_run_of_the_shipped_config(tmp_path):
    """`snakemake -n` on config.yaml lists the whole DAG, offline (nothing is downloaded in a dry run)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    n_models = len(cfg["models"]) + len(cfg["variants"])
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["finetune"] == n_models * len(cfg["tasks"]) * len(cfg["seeds"])
    assert counts["probe"] == n_models and counts["build_variant"] == len(cfg["variants"])
    assert counts["download_model"] == len(cfg["models"]) and counts["download_glue"] == len(cfg["tasks"])
    for rule in ("manifest", "report_glue", "report_probe", "probe_sentences", "tokenize"):
        assert counts[rule] >= 1


def test_fitted_head_on_an_encoder_without_one(tmp_path, tiny_glue):
    """`probe: {head: fit}`: one head fitted on the base (on SST-2 train text), reused by its variant and reruns."""
    from transformers import AutoModel, AutoTokenizer

    make_tiny_bert(tmp_path / "tiny-bert", layers=3, train_steps=30)
    AutoModel.from_pretrained(str(tmp_path / "tiny-bert")).save_pretrained(str(tmp_path / "tiny-enc"))
    AutoTokenizer.from_pretrained(str(tmp_path / "tiny-bert")).save_pretrained(str(tmp_path / "tiny-enc"))
    cfg = {
        "models": {"enc": {"source": "./tiny-enc", "probe": {"head": "fit"}}},
        "variants": {"enc-dup2": {"base": "enc", "layers": "0-2,2"}},
        "glue": {"source": "tsv", "dir": str(tiny_glue)},
        "tasks": ["rte"],
        "seeds": [1],
        "probe": {"sentences": 40, "max_length": 48, "bootstrap": 50,
                  "fit": {"tasks": ["sst2"], "sentences": 40, "steps": 20, "batch_size": 8, "learning_rate": 3e-3}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "results/report/probe.csv")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    heads = tmp_path / "resources" / "heads"
    assert sorted(p.name for p in heads.iterdir()) == ["enc"]  # the variant has none of its own
    info = json.loads((heads / "enc" / "head.json").read_text())
    assert info["tasks"] == ["sst2"] and info["split"] == "train" and info["settings"]["steps"] == 20
    for model in ("enc", "enc-dup2"):
        table = pd.read_csv(tmp_path / "results" / "probe" / f"{model}.csv")
        assert set(table["head"]) == {"fit"}
    base, var = (pd.read_csv(tmp_path / "results" / "probe" / f"{m}.csv") for m in ("enc", "enc-dup2"))
    pd.testing.assert_series_equal(base["top1"][:4], var["top1"][:4])  # same layers, same head
    assert "fitted head" in (tmp_path / "results" / "report" / "probe.md").read_text()

    again = snakemake(tmp_path, "results/report/probe.csv", "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
