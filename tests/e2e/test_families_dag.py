"""Every model family of the README through the whole DAG on CPU: layer map, probe, output change, fine-tuning and
report, one tiny random model per family (tests/helpers.py FAMILY_SPECS) in one Snakemake run."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import FAMILY_SPECS, REPO, head_reading, make_tiny_family

pytestmark = pytest.mark.e2e

#: the discriminator publishes no MLM head: it is probed through a fitted one
FITTED = {"electra-discriminator"}


def test_every_family_through_the_whole_dag(tmp_path, tiny_glue):
    models, variants = {}, {}
    for family in FAMILY_SPECS:
        make_tiny_family(tmp_path / family, family, layers=3)
        models[family] = {"source": f"./{family}", "probe": {"head": "fit" if family in FITTED else "pretrained"}}
        variants[f"{family}-dup2"] = {"base": family, "layers": "0-2,2"}  # expressible by every family
    cfg = {
        "models": models, "variants": variants, "glue": {"source": "tsv", "dir": str(tiny_glue)},
        "tasks": ["rte"], "seeds": [1],
        "probe": {"sentences": 16, "max_length": 32, "bootstrap": 20,
                  "fit": {"tasks": ["sst2"], "sentences": 32, "steps": 3, "batch_size": 8}},
        "statistics": {"bootstrap": 100},
        "finetune": {"batch_size": 8, "epochs": 1, "max_length": 32, "max_train_samples": 16,
                     "max_eval_samples": 16, "logging_steps": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           "config.yaml", "--cores", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    res = tmp_path / "results"
    probe = pd.read_csv(res / "report" / "probe.csv")
    change = pd.read_csv(res / "report" / "output_change.csv").set_index("variant")
    glue = pd.read_csv(res / "report" / "glue.csv")
    for family in FAMILY_SPECS:
        variant = f"{family}-dup2"
        assert (tmp_path / "resources" / "models" / variant / "layer_map.json").is_file(), family
        assert list(head_reading(probe[probe.model == family])["layer"]) == [0, 1, 2, 3], family
        assert list(head_reading(probe[probe.model == variant])["source_layer"]) == [0, 1, 2, 3, 3], family
        heads = {"fit-tied", "fit-untied"} if family in FITTED else {"pretrained"}
        assert set(probe[probe.model == family]["head"]) == heads | {"none"}, family  # none: the identity reading
        assert change.loc[variant, "kind"] == "duplicate" and change.loc[variant, "kl"] >= -1e-6, family  # float32
        for model in (family, variant):
            m = json.loads((res / "finetune" / model / "rte" / "seed1" / "metrics.json").read_text())
            assert not m["diverged"] and 0 <= m["accuracy"] <= 1, model
            # SDPA where the family's class has it, eager where not (DeBERTa-v2), recorded per run
            assert m["attention"] == ("eager" if family == "deberta-v2" else "sdpa"), model
        assert glue[(glue.model == variant) & (glue.task == "rte")]["delta_mean"].notna().all(), family
