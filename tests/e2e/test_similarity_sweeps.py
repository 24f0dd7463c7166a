"""End to end: layer similarity from every probe, variants chosen by it (one built and fine-tuned, one probe-only),
a layer-order sweep, and identical variants run once, through one Snakemake run on a tiny BERT."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import REPO, make_tiny_bert

pytestmark = pytest.mark.e2e


def test_similarity_sweeps_through_the_dag(tmp_path, tiny_glue):
    make_tiny_bert(tmp_path / "tiny-bert", layers=3, train_steps=30)
    cfg = {"models": {"tiny": {"source": "./tiny-bert"}},
           "variants": {"tiny-last": {"base": "tiny", "layers": "0-2,2", "finetune": False}},
           "sweeps": [{"base": "tiny", "kind": "remove_by_influence", "k": [1], "finetune": True},
                      {"base": "tiny", "kind": "duplicate_by_angular", "k": [2]},
                      {"base": "tiny", "kind": "reverse_block", "blocks": ["0-2"]},
                      {"base": "tiny", "kind": "duplicate_top", "k": [1]}],  # = tiny-last
           "glue": {"source": "tsv", "dir": str(tiny_glue)}, "tasks": ["rte"], "seeds": [1],
           "probe": {"sentences": 30, "max_length": 32, "bootstrap": 50}, "statistics": {"bootstrap": 100},
           "finetune": {"batch_size": 8, "epochs": 1, "max_length": 32, "max_train_samples": 16,
                        "max_eval_samples": 16, "logging_steps": 1}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           "config.yaml", "--cores", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    res = tmp_path / "results"

    # every probed model has its similarity; identical variants were never run
    probed = ["tiny", "tiny-last", "tiny-bi-rm1", "tiny-ang-dup2", "tiny-rev0-2"]
    assert sorted(p.stem for p in (res / "similarity").glob("*.csv")) == sorted(probed)
    assert not (res / "probe" / "tiny-duptop1.csv").exists()
    base = pd.read_csv(res / "similarity" / "tiny.csv")
    assert len(base) == 6 and base["cka"].between(-1e-9, 1 + 1e-9).all()

    # the selections are the base's own argmins, and every job used them
    single = base[base["n_layers"] == 1].sort_values(["block_influence", "from_state"])
    pick = json.loads((res / "similarity" / "selected" / "tiny-bi-rm1.json").read_text())
    assert pick["chosen"] == [int(single["from_state"].iloc[0])]
    kept = [i for i in range(3) if i not in pick["chosen"]]
    assert json.loads((tmp_path / "resources" / "models" / "tiny-bi-rm1" / "layer_map.json").read_text())["layers"] \
        == kept
    probe = pd.read_csv(res / "probe" / "tiny-bi-rm1.csv")
    for _, rows in probe.groupby(["mode", "reading", "head"]):  # every reading of every mode: the same layers
        assert list(rows["source_layer"]) == [0] + [i + 1 for i in kept]
    assert (res / "finetune" / "tiny-bi-rm1" / "rte" / "seed1" / "metrics.json").is_file()
    pairs = base[base["n_layers"] == 2].sort_values(["angular", "from_state"])
    a = int(pairs["from_state"].iloc[0])
    dup = json.loads((res / "similarity" / "selected" / "tiny-ang-dup2.json").read_text())
    assert dup["layers"] == list(range(a + 2)) + [a, a + 1] + list(range(a + 2, 3))
    change = pd.read_csv(res / "report" / "output_change.csv").set_index("variant")
    assert change.loc["tiny-ang-dup2", "layers"] == dup["layers_spec"]
    assert change.loc["tiny-rev0-2", "kind"] == "reorder" and "tiny-duptop1" not in change.index

    table = pd.read_csv(res / "report" / "variants.csv", keep_default_na=False).set_index("variant")
    assert table.loc["tiny-duptop1", "same_as"] == "tiny-last" and table.loc["tiny-rev0-2", "layers"] == "2-0"
    assert table.loc["tiny-bi-rm1", "chosen_by"].startswith("remove 1 layer(s) of lowest Block Influence")
    md = (res / "report" / "similarity.md").read_text()
    assert "## tiny (3 layers" in md and "most similar block" in md
    for f in ("similarity_tiny.png", "similarity_tiny.pdf", "similarity.tex", "variants.md", "variants.tex"):
        assert (res / "report" / f).stat().st_size > 100, f
