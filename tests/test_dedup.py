"""Identical variants are one experiment: found from the effective layer map (after the family's rules), run once,
and said so in the config check, the provenance, the plan and the report."""

import copy
import json
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import REPO, make_tiny_family
from layerlens import config as llconfig
from layerlens import grid, layermap


@pytest.fixture
def cfg(tiny_bert, tiny_glue):
    return {"models": {"tiny": {"source": str(tiny_bert)}}, "glue": {"source": "tsv", "dir": str(tiny_glue)},
            "tasks": ["rte"], "seeds": [1]}


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    return make_tiny_family(tmp_path_factory.mktemp("al") / "albert", "albert")


def same_as(cfg):
    return {v: s["same_as"] for v, s in cfg["variants"].items() if "same_as" in s}


def test_overlapping_sweeps_are_one_model(cfg):
    """On a 3-layer BERT: duptop1 is dup2, dupbottom1 is dup0, dupbottom3 is duptop3 (the whole stack twice),
    skip1-1 is rm1, and a one-layer block reversed or repeated is the base itself."""
    cfg["sweeps"] = [{"base": "tiny", "kind": "duplicate_each"}, {"base": "tiny", "kind": "remove_each"},
                     {"base": "tiny", "kind": "duplicate_top", "k": [1, 3]},
                     {"base": "tiny", "kind": "duplicate_bottom", "k": [1, 3]},
                     {"base": "tiny", "kind": "skip_block", "blocks": ["1-1"]},
                     {"base": "tiny", "kind": "reverse_block", "blocks": ["1-1", "0-1"]},
                     {"base": "tiny", "kind": "middle_repeat", "blocks": ["2-2"]}]
    llconfig.validate(cfg)
    assert same_as(cfg) == {"tiny-duptop1": "tiny-dup2", "tiny-dupbottom1": "tiny-dup0",
                            "tiny-dupbottom3": "tiny-duptop3", "tiny-skip1-1": "tiny-rm1", "tiny-rev1-1": "tiny",
                            "tiny-midrep2-2": "tiny"}
    planned = grid.planned_variants(cfg)
    assert len(planned) == len(cfg["variants"]) - 6 and "tiny-rev0-1" in planned and "tiny-duptop1" not in planned
    assert grid.variants_of(cfg, "tiny") == planned
    again = copy.deepcopy(cfg)
    llconfig.validate(again)  # idempotent: a checked config checks to itself
    assert again == cfg


def test_the_canonical_model_is_the_fine_tuned_one(cfg):
    cfg["variants"] = {"mine": {"base": "tiny", "layers": "0-2,2", "finetune": False},
                       "also-mine": {"base": "tiny", "duplicate": [2], "finetune": False},
                       "id": {"base": "tiny", "layers": "0-2"}}
    cfg["sweeps"] = [{"base": "tiny", "kind": "duplicate_top", "k": [1], "finetune": True}]
    llconfig.validate(cfg)
    assert same_as(cfg) == {"mine": "tiny-duptop1", "also-mine": "tiny-duptop1", "id": "tiny"}
    assert grid.finetuned_models(cfg) == ["tiny", "tiny-duptop1"]  # the base and one fine-tuned variant


def test_in_albert_every_variant_of_one_depth_is_one_model(cfg, albert):
    """ALBERT shares its layer weights: dup0, dup1 and dup2 are one model (their logits are equal, computed
    here), and any map of the base's depth is the base."""
    cfg["models"] = {"al": {"source": str(albert)}}
    cfg["variants"] = {"al-x": {"base": "al", "layers": "0,0-1"}}  # drop layer 2, repeat layer 0: 3 layers
    cfg["sweeps"] = [{"base": "al", "kind": "duplicate_each"}, {"base": "al", "kind": "remove_each"},
                     {"base": "al", "kind": "middle_repeat", "blocks": ["0-2"]}]
    llconfig.validate(cfg)
    assert same_as(cfg) == {"al-x": "al", "al-dup1": "al-dup0", "al-dup2": "al-dup0", "al-rm1": "al-rm0",
                            "al-rm2": "al-rm0", "al-midrep0-2": "al"}
    ids = torch.tensor([[2, 50, 60, 70, 80, 3]])
    logits = {}
    for layers in ([0, 0, 1, 2], [0, 1, 2, 2], [0, 0, 1], [0, 1, 2], [1, 1, 1]):
        model, _ = layermap.variant_model(albert, layers)
        with torch.no_grad():
            logits[tuple(layers)] = model.eval()(input_ids=ids).logits
    assert torch.equal(logits[0, 0, 1, 2], logits[0, 1, 2, 2])
    assert torch.equal(logits[0, 0, 1], logits[0, 1, 2]) and torch.equal(logits[1, 1, 1], logits[0, 1, 2])


def test_the_config_check_says_which_variants_are_one_model(cfg, albert, tmp_path, capsys):
    cfg["models"]["al"] = {"source": str(albert)}
    cfg["sweeps"] = [{"base": "al", "kind": "duplicate_each", "layers": [0, 2]},
                     {"base": "tiny", "kind": "duplicate_top", "k": [1]},
                     {"base": "tiny", "kind": "duplicate_each", "layers": [2]}]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert llconfig.main([str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    assert "2 model(s), 2 variant(s)" in out and "2 variant(s) are the same model as another" in out
    assert "al-dup2 = al-dup0: the same model under albert's rules: ALBERT runs its shared layer group(s)" in out
    assert "tiny-dup2 = tiny-duptop1: the same layer map" in out


def test_a_built_variant_records_its_aliases(tiny_bert, tmp_path):
    from layerlens.download import fetch_model

    fetch_model(str(tiny_bert), "main", tmp_path / "base", name="tiny")
    prov = layermap.build_variant_from_config(tmp_path / "base", tmp_path / "v", {"base": "tiny", "duplicate": [2]},
                                              base_name="tiny", variant_name="tiny-dup2", aliases=["tiny-duptop1"])
    assert prov["aliases"] == ["tiny-duptop1"]
    assert json.loads((tmp_path / "v" / "layer_map.json").read_text())["aliases"] == ["tiny-duptop1"]


def test_identical_variants_are_planned_once(cfg, tmp_path):
    """The real plan (`snakemake -n`): each distinct model is probed, compared and fine-tuned once; the names
    that are the same model appear in no job."""
    cfg["variants"] = {"tiny-last": {"base": "tiny", "layers": "0-2,2"}, "tiny-same": {"base": "tiny",
                                                                                       "layers": "0-2"}}
    cfg["sweeps"] = [{"base": "tiny", "kind": "duplicate_each"}, {"base": "tiny", "kind": "duplicate_top", "k": [1]},
                     {"base": "tiny", "kind": "remove_by_influence", "k": [1]}]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1",
                           "--configfile", "c.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # distinct models: the base, tiny-last (= dup2 = duptop1), dup0, dup1, bi-rm1 (chosen later); tiny-same = base
    assert counts["probe"] == 5 and counts["output_change"] == 4 and counts["select_layers"] == 1
    assert counts["finetune"] == 2 and counts["build_variant"] == 1  # the base and tiny-last
    for name in ("tiny-same", "tiny-dup2", "tiny-duptop1"):
        assert f"/{name}." not in proc.stdout and f"/{name}/" not in proc.stdout, name


def test_the_variants_table_says_which_are_one_model(cfg, albert, tmp_path):
    """Static aliases from the config check, and a variant chosen by similarity that turned out to be its base
    (ALBERT: same depth), found at report time."""
    from layerlens.io import write_json
    from layerlens.report import variants

    cfg["models"] = {"al": {"source": str(albert)}}
    cfg["variants"] = {"al-pick": {"base": "al", "select": {"by": "block_influence", "k": 1, "action": "remove"}},
                       "al-pick2": {"base": "al", "select": {"by": "angular", "k": 1, "action": "duplicate"}}}
    cfg["sweeps"] = [{"base": "al", "kind": "duplicate_each", "layers": [0, 1]},
                     {"base": "al", "kind": "middle_repeat", "blocks": ["0-2"]}]
    llconfig.validate(cfg)
    selected = {"al-pick": tmp_path / "pick.json", "al-pick2": tmp_path / "pick2.json"}
    write_json(selected["al-pick"], {"layers": [0, 2], "chosen": [1]})  # depth 2: a model of its own
    write_json(selected["al-pick2"], {"layers": [0, 0, 1, 2], "chosen": [0]})  # depth 4: al-dup0 again
    table = variants.variants_table(cfg["variants"], selected, {"al": albert}).set_index("variant")
    assert list(table.index) == ["al-pick", "al-pick2", "al-dup0", "al-dup1", "al-midrep0-2"]
    assert dict(table["same_as"]) == {"al-pick": "", "al-pick2": "al-dup0", "al-dup0": "", "al-dup1": "al-dup0",
                                      "al-midrep0-2": "al"}
    assert "run anyway" in table.loc["al-pick2", "why"] and "ALBERT runs its shared" in table.loc["al-dup1", "why"]
    assert table.loc["al-pick", "chosen_by"] == "remove 1 layer(s) of lowest Block Influence: 1"
    assert table.loc["al-midrep0-2", "layers"] == "1,1,1" and table.loc["al-midrep0-2", "kind"] == "replace"
    variants.write_variants_report(table.reset_index(), tmp_path / "v.csv", tmp_path / "v.md", tmp_path / "v.tex")
    assert "3 of 5 variant(s) are the same model as another" in (tmp_path / "v.md").read_text()
    assert "al-midrep0-2" in (tmp_path / "v.tex").read_text().replace("\\_", "_")


def test_a_variant_with_another_option_is_another_experiment(cfg):
    """Only the layer map is compared: an entry with an option of its own (any key besides the map's, finetune
    and same_as) is not the same experiment as one with the same map."""
    from layerlens import dedup

    cfg["variants"] = {"a": {"base": "tiny", "duplicate": [2]}, "b": {"base": "tiny", "layers": "0-2,2"}}
    found = dedup.mark_identical(cfg, {"tiny": (3, None)})  # family unknown (before a download): equal maps only
    assert found == [("b", "a", "the same layer map")]
    cfg["variants"]["b"]["init"] = "fresh"  # an option of another kind of variant
    assert dedup.mark_identical(cfg, {"tiny": (3, None)}) == [] and "same_as" not in cfg["variants"]["b"]
