"""End to end: snakemake on a tiny BERT and tiny GLUE folders, checking every output and its numbers."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import REPO, check_outputs, head_reading, make_tiny_bert, write_config

pytestmark = pytest.mark.e2e


def snakemake(workdir, *args, timeout=1800):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def test_workflow_on_tiny_fixtures(tmp_path, tiny_glue):
    cfg = write_config(tmp_path, tiny_glue)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check_outputs(tmp_path, cfg, n_eval={"rte": 24, "mrpc": 24})

    # a finished workflow has nothing left to do
    again = snakemake(tmp_path, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # the self-contained HTML report with every table and figure, by stage, with captions
    rep = snakemake(tmp_path, "--report", "report.html")
    assert rep.returncode == 0, rep.stderr[-3000:]
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    for text in ("1. Layer probe", "2. Output change", "3. GLUE", "4. Cost", "probe_tiny.png", "significance.csv",
                 "removing or duplicating most layers", "glue.html", "cost.html", "probe.html", "runs.csv"):
        assert text in html, text


@pytest.mark.realdata
def test_workflow_on_real_glue(tmp_path, shared_glue):
    cfg = write_config(tmp_path, shared_glue, max_train_samples=64, max_eval_samples=80)
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check_outputs(tmp_path, cfg, n_eval={"rte": 80, "mrpc": 80})
    sentences = pd.read_csv(tmp_path / "results" / "probe" / "sentences.tsv", sep="\t")
    assert len(sentences) == 60 and set(sentences["task"]) == {"rte", "mrpc"}


@pytest.mark.parametrize("path", [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_dry_run_of_the_shipped_configs(tmp_path, path):
    """`snakemake -n` on every shipped config lists the whole DAG, offline (nothing is downloaded in a dry run);
    the job counts follow from the config itself, so editing a config never breaks this test."""
    from layerlens import config as llconfig
    from layerlens import grid

    cfg = llconfig.validate(yaml.safe_load(path.read_text()), workdir=REPO)
    # --forceall: every job is listed, whatever a run in this checkout has already made
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--forceall",
                           "--cores", "1", "--configfile", str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    finetuned = grid.finetuned_models(cfg)
    models = list(cfg["models"]) + grid.planned_variants(cfg)  # variants identical to another are not planned
    built = [v for v in grid.planned_variants(cfg) if grid.is_materialized(cfg, v)]
    assert counts.get("finetune", 0) == len(finetuned) * len(cfg["tasks"]) * len(cfg["seeds"])
    assert counts["probe"] == len(models) and counts.get("build_variant", 0) == len(built)
    assert counts["download_model"] == len(cfg["models"])
    assert counts["download_glue"] == len(grid.glue_tasks(cfg))
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
        "sweeps": [{"base": "enc", "kind": "remove_each", "layers": [1]}],  # probe-only, built in memory
        "glue": {"source": "tsv", "dir": str(tiny_glue)},
        "tasks": ["rte"],
        "seeds": [1],
        "probe": {"sentences": 40, "max_length": 48, "bootstrap": 50, "mode": ["input", "masked"],
                  "fit": {"tasks": ["sst2"], "sentences": 40, "steps": 20, "batch_size": 8, "learning_rate": 3e-3},
                  "translators": {"enabled": True, "sentences": 40, "steps": 3, "batch_size": 8}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "results/report/probe.csv", "results/report/output_change.csv")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    heads = tmp_path / "resources" / "heads"
    assert sorted(p.name for p in heads.iterdir()) == ["enc"]  # the variant has none of its own
    assert sorted(p.name for p in (heads / "enc").iterdir()) == ["tied", "untied"]  # tie_decoder: both (default)
    for decoder in ("tied", "untied"):
        info = json.loads((heads / "enc" / decoder / "head.json").read_text())
        assert info["tasks"] == ["sst2"] and info["split"] == "train" and info["settings"]["steps"] == 20
        assert info["settings"]["tie_decoder"] is (decoder == "tied")
    for model in ("enc", "enc-dup2", "enc-rm1"):
        table = pd.read_csv(tmp_path / "results" / "probe" / f"{model}.csv")
        assert set(table["head"]) == {"fit-tied", "fit-untied", "none"} and set(table["mode"]) == {"input", "masked"}
        # translators: for the base only, one set per head and mode
        assert ("translated" in set(table["reading"])) is (model == "enc")
    assert sorted(p.name for p in (tmp_path / "resources" / "translators" / "enc").glob("*.safetensors")) == [
        f"fit-{d}_{m}.safetensors" for d in ("tied", "untied") for m in ("input", "masked")]
    rm1 = head_reading(pd.read_csv(tmp_path / "results" / "probe" / "enc-rm1.csv"))
    assert list(rm1["source_layer"]) == [0, 1, 3]
    # output change reads both models through the same fitted head: its base top-1 is the probe's last layer
    change = pd.read_csv(tmp_path / "results" / "report" / "output_change.csv").set_index("variant")
    assert set(change.index) == {"enc-dup2", "enc-rm1"}
    probe_base = head_reading(pd.read_csv(tmp_path / "results" / "probe" / "enc.csv"), head="fit-tied")
    probe_rm1 = head_reading(pd.read_csv(tmp_path / "results" / "probe" / "enc-rm1.csv"), head="fit-tied")
    assert change["top1_base"].to_numpy() == pytest.approx(probe_base["top1"].iloc[-1])
    assert change.loc["enc-rm1", "top1_variant"] == pytest.approx(probe_rm1["top1"].iloc[-1])
    base, var = (head_reading(pd.read_csv(tmp_path / "results" / "probe" / f"{m}.csv")) for m in ("enc", "enc-dup2"))
    pd.testing.assert_series_equal(base["top1"][:4], var["top1"][:4])  # same layers, same head
    report = (tmp_path / "results" / "report" / "probe.md").read_text()
    assert "enc · fit-untied" in report and "enc · translated" in report and "## masked mode" in report

    again = snakemake(tmp_path, "results/report/probe.csv", "results/report/output_change.csv", "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
