"""Sweep kinds against their definitions: the depth kinds by hand, the layer-order kinds against the formulas of
"Transformer Layers as Painters" (their run of layers for a given start_layer, written out here), the similarity
kinds against the Block Influence and angular distance computed directly from the model's hidden states."""

import copy
import random

import numpy as np
import pandas as pd
import pytest
from helpers import kept_states, sentence, write_sentence_table
from layerlens import config as llconfig
from layerlens import grid, layermap, probe, sweeps
from layerlens.errors import ConfigError
from layerlens.families import adapter_for


def test_depth_kinds():
    assert sweeps.sweep("duplicate_each", 3) == [("dup0", [0, 0, 1, 2]), ("dup1", [0, 1, 1, 2]),
                                                 ("dup2", [0, 1, 2, 2])]
    assert sweeps.sweep("remove_each", 3, layers=[2]) == [("rm2", [0, 1])]
    assert sweeps.sweep("duplicate_block", 6, blocks=["2-4"]) == [("dupblock2-4", [0, 1, 2, 3, 4, 2, 3, 4, 5])]
    assert sweeps.sweep("duplicate_top", 4, k=[2]) == [("duptop2", [0, 1, 2, 3, 2, 3])]
    assert sweeps.sweep("duplicate_bottom", 4, k=[1]) == [("dupbottom1", [0, 0, 1, 2, 3])]
    assert sweeps.sweep("interleave", 4, every=[2]) == [("interleave2", [0, 1, 1, 2, 3, 3])]


def painters(method, num_layers, start_layer, seed=0):
    """The run of layers of the Painters code (bert/modeling_bert.py) for ``start_layer``: the open interval
    (start_layer, num_layers - start_layer) is the block."""
    end = num_layers - start_layer
    if method == "skip":
        return list(range(0, start_layer + 1)) + list(range(end, num_layers))
    if method == "reverse":
        return [end - 1 - (i - start_layer - 1) if start_layer < i < end else i for i in range(num_layers)]
    if method == "middle_repeat":
        return (list(range(0, start_layer + 1)) + [int(num_layers / 2)] * len(range(start_layer + 1, end))
                + list(range(end, num_layers)))
    random.seed(seed)  # their draw: the global generator
    period = list(range(start_layer + 1, end))
    random.shuffle(period)
    return list(range(0, start_layer + 1)) + period + list(range(end, num_layers))


@pytest.mark.parametrize("num_layers, start_layer", [(12, 3), (24, 8), (12, 0), (7, 1)])
def test_order_kinds_are_the_painters_runs(num_layers, start_layer):
    a, b = start_layer + 1, num_layers - start_layer - 1  # the open interval (start_layer, L - start_layer)
    block = f"{a}-{b}"
    for kind, method in (("reverse_block", "reverse"), ("skip_block", "skip"), ("middle_repeat", "middle_repeat")):
        [(name, layers)] = sweeps.sweep(kind, num_layers, blocks=[block])
        assert layers == painters(method, num_layers, start_layer), kind
    got = sweeps.sweep("shuffle_block", num_layers, blocks=[block], seeds=[0, 3])
    assert [n for n, _ in got] == [f"shuf{a}-{b}s0", f"shuf{a}-{b}s3"]
    for (_, layers), seed in zip(got, (0, 3)):
        assert layers == painters("random", num_layers, start_layer, seed)


def test_order_kinds_by_hand_and_their_errors():
    assert sweeps.sweep("reverse_block", 6, blocks=["1-4"]) == [("rev1-4", [0, 4, 3, 2, 1, 5])]
    assert sweeps.sweep("skip_block", 6, blocks=["2-3", "0-0"]) == [("skip2-3", [0, 1, 4, 5]),
                                                                     ("skip0-0", [1, 2, 3, 4, 5])]
    assert sweeps.sweep("middle_repeat", 6, blocks=["1-4"]) == [("midrep1-4", [0, 2, 2, 2, 2, 5])]
    [(_, shuffled)] = sweeps.sweep("shuffle_block", 6, blocks=["1-4"], seeds=[5])
    assert shuffled[0] == 0 and shuffled[5] == 5 and sorted(shuffled[1:5]) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="needs `seeds`"):
        sweeps.sweep("shuffle_block", 6, blocks=["1-4"])
    with pytest.raises(ValueError, match="not one ascending range"):
        sweeps.sweep("reverse_block", 6, blocks=["4-1"])
    with pytest.raises(ValueError, match="out of range"):
        sweeps.sweep("skip_block", 6, blocks=["3-6"])
    with pytest.raises(ValueError, match="zero layers"):
        sweeps.sweep("skip_block", 6, blocks=["0-5"])


@pytest.fixture
def cfg(tiny_bert, tiny_glue):
    return {"models": {"tiny": {"source": str(tiny_bert)}}, "glue": {"source": "tsv", "dir": str(tiny_glue)},
            "tasks": ["rte"], "seeds": [1]}


def test_order_and_similarity_sweeps_in_the_config(cfg):
    cfg["sweeps"] = [{"base": "tiny", "kind": "reverse_block", "blocks": ["0-2"]},
                     {"base": "tiny", "kind": "shuffle_block", "blocks": ["0-2"], "seeds": [1]},
                     {"base": "tiny", "kind": "remove_by_influence", "k": [1, 2], "finetune": True},
                     {"base": "tiny", "kind": "duplicate_by_angular", "k": [2]}]
    v = llconfig.validate(cfg)["variants"]
    assert v["tiny-rev0-2"] == {"base": "tiny", "layers": "2-0", "finetune": False}
    assert v["tiny-bi-rm2"] == {"base": "tiny", "select": {"by": "block_influence", "k": 2, "action": "remove"},
                                "finetune": True}
    assert v["tiny-ang-dup2"]["select"] == {"by": "angular", "k": 2, "action": "duplicate"}
    assert grid.selected_variants(cfg) == ["tiny-bi-rm1", "tiny-bi-rm2", "tiny-ang-dup2"]
    assert "tiny-bi-rm2" in grid.finetuned_models(cfg)


@pytest.mark.parametrize("sweep, key, words", [
    ({"kind": "remove_by_influence", "k": [3]}, "sweeps[0].k", "k=3 is out of range"),
    ({"kind": "remove_by_angular"}, "sweeps[0]", "needs `k`"),
    ({"kind": "reverse_block", "blocks": ["0-1"], "seeds": [1]}, "sweeps[0].seeds", "does not apply"),
    ({"kind": "shuffle_block", "blocks": ["0-1"]}, "sweeps[0].blocks", "needs `seeds`"),
])
def test_bad_new_sweeps(cfg, sweep, key, words):
    cfg["sweeps"] = [{"base": "tiny", **sweep}]
    with pytest.raises(ConfigError) as err:
        llconfig.validate(cfg)
    assert err.value.key == key and words in str(err.value)


def test_a_hand_written_select_variant_and_its_errors(cfg):
    good = copy.deepcopy(cfg)
    good["variants"] = {"mine": {"base": "tiny", "select": {"by": "angular", "k": 2, "action": "remove"}}}
    assert grid.selected_variants(llconfig.validate(good)) == ["mine"]
    cfg["variants"] = {"mine": {"base": "tiny", "layers": "0-1", "select": {"by": "angular", "k": 1,
                                                                             "action": "remove"}}}
    with pytest.raises(ConfigError, match="variants.mine.layers.*give `select` alone"):
        llconfig.validate(cfg)


def test_a_sweep_the_family_cannot_express_names_the_sweep(cfg, tmp_path):
    from helpers import make_tiny_family

    cfg["models"]["al"] = {"source": str(make_tiny_family(tmp_path / "al", "albert"))}
    cfg["sweeps"] = [{"base": "al", "kind": "reverse_block", "blocks": ["0-1"]}]
    with pytest.raises(ConfigError, match=r"sweeps\[0\]'.*generates al-rev0-1 \(layers 1-0,2\).*reordering"):
        llconfig.validate(cfg)


def similarity_table(num_layers, bi=None, angular=None):
    """A similarity table of every pair of states with the given single-layer Block Influence and pair angular
    distances (the rest filled in distinctly larger), intervals of +-0.01."""
    rows = []
    for a in range(num_layers):
        for b in range(a + 1, num_layers + 1):
            n = b - a
            bi_v = (bi or {}).get(a, 0.5 + a / 100) if n == 1 else 0.9
            ang_v = (angular or {}).get((a, b), 0.6 + a / 100 + n / 10)
            rows.append({"from_state": a, "to_state": b, "n_layers": n, "layers": layermap.format_layers(range(a, b)),
                         "block_influence": bi_v, "bi_lo": bi_v - 0.01, "bi_hi": bi_v + 0.01, "angular": ang_v,
                         "angular_lo": ang_v - 0.01, "angular_hi": ang_v + 0.01})
    return pd.DataFrame(rows)


def test_selection_rules_on_a_known_table():
    table = similarity_table(6, bi={0: 0.01, 3: 0.02, 4: 0.02, 1: 0.3}, angular={(2, 5): 0.05, (0, 3): 0.05})
    bi = {"by": "block_influence", "action": "remove"}
    got = sweeps.select(table, {**bi, "k": 2}, 6)
    assert got["chosen"] == [0, 3] and got["layers"] == [1, 2, 4, 5]  # 3 and 4 tie: the lower one
    assert [c["layers"] for c in got["candidates"]][:3] == ["0", "3", "4"] and got["candidates"][2]["chosen"] is False
    dup = sweeps.select(table, {**bi, "k": 3, "action": "duplicate"}, 6)
    assert dup["layers"] == [0, 0, 1, 2, 3, 3, 4, 4, 5]
    ang = sweeps.select(table, {"by": "angular", "k": 3, "action": "duplicate"}, 6)  # 0-2 and 2-4 tie: the lower
    assert ang["chosen"] == [0, 1, 2] and ang["layers"] == [0, 1, 2, 0, 1, 2, 3, 4, 5]
    # ModernBERT cannot drop or copy its layer 0: the next best is taken
    mb = adapter_for("modernbert")
    check = lambda layers: mb.check_layer_map({"num_hidden_layers": 6}, layers)  # noqa: E731
    assert sweeps.select(table, {**bi, "k": 2}, 6, check=check)["chosen"] == [3, 4]
    assert sweeps.select(table, {"by": "angular", "k": 3, "action": "remove"}, 6, check=check)["chosen"] == [2, 3, 4]
    with pytest.raises(ValueError, match="not of this 4-layer base"):
        sweeps.select(table, {**bi, "k": 1}, 4)


def test_selection_from_the_probes_similarity_is_the_direct_choice(tiny_bert, tmp_path):
    """select_layers on the similarity the probe measured picks what numpy picks from the model's own hidden
    states: the k layers of lowest 1 - mean cos(input, output), the block of smallest mean angular distance."""
    from layerlens.download import fetch_model

    sentences = [sentence(random.Random(7 + i)) for i in range(12)]
    fetch_model(str(tiny_bert), "main", tmp_path / "tiny", name="tiny")
    write_sentence_table(tmp_path / "s.tsv", sentences)
    probe.probe_to_file(tmp_path / "tiny", tmp_path / "s.tsv", tmp_path / "p.csv", model_name="tiny",
                        settings={"max_length": 64, "batch_size": 4, "chunk_tokens": 64, "bootstrap": 50},
                        similarity_csv=tmp_path / "sim.csv")
    states = np.concatenate(kept_states(tiny_bert, sentences), axis=1)
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    cos = {(a, b): np.sum(unit[a] * unit[b], -1) for a in range(4) for b in range(a + 1, 4)}
    bi = sorted(range(3), key=lambda i: 1 - cos[i, i + 1].mean())
    ang2 = min(range(2), key=lambda a: np.mean(np.arccos(np.clip(cos[a, a + 2], -1, 1))))

    def chosen(selection):
        rec = sweeps.select_to_file(tmp_path / "tiny", tmp_path / "sim.csv", tmp_path / "x.json", variant="x",
                                    base="tiny", selection=selection)
        assert sweeps.with_selected_layers({"base": "tiny", "select": selection}, tmp_path / "x.json")["layers"] \
            == rec["layers_spec"] == layermap.format_layers(rec["layers"])
        return rec

    assert chosen({"by": "block_influence", "k": 1, "action": "remove"})["layers"] == \
        layermap.sugar_layers(3, remove=bi[:1])
    assert chosen({"by": "block_influence", "k": 2, "action": "duplicate"})["layers"] == \
        layermap.sugar_layers(3, duplicate=bi[:2])
    assert chosen({"by": "angular", "k": 2, "action": "remove"})["layers"] == \
        layermap.sugar_layers(3, remove=[ang2, ang2 + 1])
    rec = chosen({"by": "angular", "k": 2, "action": "duplicate"})
    assert rec["chosen"] == [ang2, ang2 + 1] and len(rec["layers"]) == 5
