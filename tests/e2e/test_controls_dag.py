"""End to end: a variant with its three controls and the stable recipe, through Snakemake on tiny fixtures."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import REPO, make_tiny_bert

pytestmark = pytest.mark.e2e


def test_a_variant_with_its_controls_and_the_stable_recipe(tmp_path, tiny_glue):
    make_tiny_bert(tmp_path / "tiny-bert", layers=3, train_steps=30)
    cfg = {
        "models": {"tiny": {"source": "./tiny-bert"}},
        "variants": {"tiny-dup2": {"base": "tiny", "layers": "0-2,2", "controls": ["compute", "random", "frozen"]}},
        "glue": {"source": "tsv", "dir": str(tiny_glue)},
        "tasks": ["rte"],
        "seeds": [1, 2],
        "probe": {"sentences": 30, "max_length": 48, "bootstrap": 50},
        "statistics": {"bootstrap": 100},
        "controls": {"init_seed": 5},
        "finetune": {"preset": "stable", "batch_size": 8, "max_length": 64, "learning_rate": 1e-3,
                     "logging_steps": 5, "holdout_fraction": 0.25, "per_task": {"rte": {"epochs": 2}}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--cores", "2"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    # the design check, once, on the main process: 2 seeds, 4 comparisons x 1 task
    assert (proc.stdout + proc.stderr).count("Design check:") == 1
    assert "Holm family of 4 test(s) (4 comparison(s) x 1 task(s))" in proc.stderr and "FAILS" in proc.stderr

    res = tmp_path / "results"
    prov = json.loads((tmp_path / "resources" / "models" / "tiny-dup2.random" / "layer_map.json").read_text())
    assert prov["control"] == "random" and prov["random_positions"] == [3] and prov["init_seed"] == 5
    models = ["tiny", "tiny-dup2", "tiny-dup2.compute", "tiny-dup2.random", "tiny.frozen", "tiny-dup2.frozen"]
    for model in models:
        for seed in (1, 2):
            m = json.loads((res / "finetune" / model / "rte" / f"seed{seed}" / "metrics.json").read_text())
            assert m["selection"]["on"] == "holdout" and m["selection"]["holdout_examples"] == 12
            epochs = [h["epoch"] for h in m["selection"]["holdout_scores"]]  # scored after every epoch
            assert epochs == ([1, 2, 3] if model == "tiny-dup2.compute" else [1, 2])  # 13 steps of 5 a epoch
            assert m["selection"]["chosen_epoch"] in epochs
            assert (m["frozen"] is not None) == model.endswith(".frozen")
            if model == "tiny-dup2.compute":
                assert m["global_steps"] == m["compute_matched"]["steps"] > m["compute_matched"]["base_steps"] == 10
            elif not model.endswith(".frozen"):
                assert m["global_steps"] == 10 and m["compute_matched"] is None  # 36 examples, batch 8, 2 epochs
    sig = pd.read_csv(res / "report" / "significance.csv")
    rte = sig[sig.task == "rte"].set_index("against")
    assert set(rte.index) == {"base", "compute-matched base", "random layers", "frozen encoder"}
    assert rte.loc["frozen encoder", "variant"] == "tiny-dup2.frozen" and rte.loc["frozen encoder", "base"] == \
        "tiny.frozen"
    assert (rte["n_pairs"] == 2).all()
    emax = pd.read_csv(res / "report" / "expected_max.csv")
    assert set(emax["model"]) == set(models) and set(emax["k"]) == {1, 2}
    assert (res / "report" / "expected_max.png").stat().st_size > 1000
    again = subprocess.run(cmd + ["-n"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
