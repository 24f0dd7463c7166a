"""The controls are what they claim, on a tiny BERT: fresh layers initialised by the family's rule where the
variant copies one, a base that trains exactly the steps the variant's extra FLOPs buy, a frozen encoder that
changes no checkpoint weight; and held-out model selection never reads the dev labels."""

import json
import shutil

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from helpers import FINETUNE_PARAMS as PARAMS
from layerlens import config as llconfig
from layerlens import controls, download, finetune, flops, grid, layermap, tokenization
from layerlens.errors import ConfigError
from layerlens.manifest import write_manifest
from layerlens.modelfiles import load_state_dict
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def prepared(tiny_bert, tiny_glue, tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    download.fetch_model(str(tiny_bert), "main", root / "models" / "tiny", name="tiny")
    download.fetch_glue("rte", "tsv", root / "glue" / "rte", tsv_dir=tiny_glue)
    tokenization.tokenize_task(root / "glue" / "rte", root / "models" / "tiny", root / "tok" / "rte", "rte", 32)
    return root


def test_copied_positions():
    assert controls.copied_positions([0, 1, 2, 2]) == [3]
    assert controls.copied_positions([0, 1, 2, 3, 4, 5, 5, 6]) == [6]
    assert controls.copied_positions([0, 1, 2, 1, 2]) == [3, 4]
    assert controls.copied_positions([0, 2]) == []


def test_random_layer_replaces_the_copy_with_a_layer_initialised_by_the_family_rule(prepared, tmp_path):
    base = prepared / "models" / "tiny"
    prov = controls.build_random_control(base, tmp_path / "rand", {"layers": "0-2,2"}, seed=3, base_name="tiny",
                                         variant_name="tiny-dup2", name="tiny-dup2.random")
    assert prov["random_positions"] == [3] and prov["init_seed"] == 3 and prov["control"] == "random"
    assert json.loads((tmp_path / "rand" / "layer_map.json").read_text())["random_positions"] == [3]
    layermap.build_variant(base, tmp_path / "copy", [0, 1, 2, 2])
    rand, copy, orig = load_state_dict(tmp_path / "rand"), load_state_dict(tmp_path / "copy"), load_state_dict(base)
    assert rand.keys() == copy.keys()
    layer3 = [k for k in rand if ".encoder.layer.3." in k]
    assert len(layer3) == 16
    for key in rand:
        if key not in layer3:  # everything but the copied layer is the variant's, bit for bit
            assert torch.equal(rand[key], copy[key]), key
    # the copy is base layer 2; the random layer is not
    for key in layer3:
        assert torch.equal(copy[key], orig[key.replace(".layer.3.", ".layer.2.")])
        assert not torch.equal(rand[key], copy[key]), key
    # BERT's own rule (BertPreTrainedModel._init_weights): Linear weights N(0, initializer_range), biases 0,
    # LayerNorm weight 1 and bias 0
    std = json.loads((base / "config.json").read_text())["initializer_range"]
    weights = torch.cat([rand[k].flatten() for k in layer3 if k.endswith("weight") and "LayerNorm" not in k])
    assert weights.numel() == 4 * 32 * 32 + 2 * 32 * 64
    assert abs(weights.mean().item()) < 3 * std / weights.numel() ** 0.5
    assert weights.std().item() == pytest.approx(std, rel=0.05)
    from scipy import stats as sps

    assert sps.kstest(weights.numpy() / std, "norm").pvalue > 0.01  # normal, not uniform or truncated
    for key in layer3:
        if key.endswith("bias"):
            assert torch.count_nonzero(rand[key]) == 0, key
        if "LayerNorm.weight" in key:
            assert torch.all(rand[key] == 1), key
    # seeded: the same seed gives the same layer, another seed another
    controls.build_random_control(base, tmp_path / "again", {"layers": "0-2,2"}, seed=3, variant_name="v")
    controls.build_random_control(base, tmp_path / "other", {"layers": "0-2,2"}, seed=4, variant_name="v")
    again, other = load_state_dict(tmp_path / "again"), load_state_dict(tmp_path / "other")
    assert all(torch.equal(again[k], rand[k]) for k in layer3)
    assert not any(torch.equal(other[k], rand[k]) for k in layer3 if k.endswith("weight") and "LayerNorm" not in k)
    # it loads as a 4-layer masked LM with nothing missing
    from transformers import AutoModelForMaskedLM

    _, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "rand"), output_loading_info=True)
    assert not info["missing_keys"]


def test_random_control_is_refused_where_nothing_is_copied_or_layers_are_shared(tmp_path):
    from helpers import make_tiny_family

    make_tiny_family(tmp_path / "alb", "albert", layers=2)
    make_tiny_family(tmp_path / "bert", "bert", layers=2)
    cfg = {"models": {"alb": {"source": str(tmp_path / "alb")}, "bert": {"source": str(tmp_path / "bert")}},
           "tasks": ["rte"], "seeds": [1],
           "variants": {"alb-dup": {"base": "alb", "layers": "0-1,1", "controls": ["random"]}}}
    with pytest.raises(ConfigError, match=r"variants\.alb-dup\.controls.*shares its layer weights"):
        llconfig.validate(json.loads(json.dumps(cfg)))
    cfg["variants"] = {"bert-rm": {"base": "bert", "remove": [1], "controls": ["random"]}}
    with pytest.raises(ConfigError, match=r"variants\.bert-rm\.controls.*copies none"):
        llconfig.validate(json.loads(json.dumps(cfg)))
    cfg["variants"] = {"bert-rm": {"base": "bert", "remove": [1], "controls": ["compute"], "finetune": False}}
    with pytest.raises(ConfigError, match=r"variants\.bert-rm\.controls.*must be fine-tuned"):
        llconfig.validate(json.loads(json.dumps(cfg)))


def _bert_parameters(h: int, inter: int, layers: int, labels: int) -> int:
    """Non-embedding parameters of BertForSequenceClassification, by hand: the embeddings' LayerNorm, per layer
    Q, K, V, attention output (h x h + h each), two LayerNorms (2h each) and the feed-forward (h x i + i, i x h +
    h), the pooler (h x h + h) and the classifier (h x labels + labels)."""
    per_layer = 4 * (h * h + h) + 2 * (2 * h) + (h * inter + inter) + (inter * h + h)
    return 2 * h + layers * per_layer + (h * h + h) + (h * labels + labels)


def test_flops_from_model_shapes_by_hand(prepared):
    base = json.loads((prepared / "models" / "tiny" / "config.json").read_text())
    assert flops.applied_parameters(base, 2) == _bert_parameters(32, 64, 3, 2)
    variant = dict(base, num_hidden_layers=4)
    assert flops.flops_ratio(base, variant) == pytest.approx(_bert_parameters(32, 64, 4, 2)
                                                             / _bert_parameters(32, 64, 3, 2))
    assert flops.trainer_steps(40, 8, 2) == 10 and flops.trainer_steps(41, 8, 2) == 12
    assert flops.trainer_steps(40, 8, 1.5) == 8


def test_shared_layers_cost_their_flops_at_every_position(tmp_path):
    from helpers import make_tiny_family

    alb = json.loads((make_tiny_family(tmp_path / "alb", "albert", layers=2) / "config.json").read_text())
    two, three = flops.applied_parameters(alb), flops.applied_parameters(dict(alb, num_hidden_layers=3))
    four = flops.applied_parameters(dict(alb, num_hidden_layers=4))
    assert three - two == four - three > 0  # one more application of the shared layer, each time the same


def test_compute_matched_base_trains_the_stated_number_of_extra_steps(prepared, tmp_path):
    base = prepared / "models" / "tiny"
    plain = finetune.finetune(base, prepared / "tok" / "rte", tmp_path / "base", task="rte", seed=1, params=PARAMS)
    assert plain["global_steps"] == 10  # 40 examples, batch 8, 2 epochs
    spec = {"variant": "tiny-dup2", "duplicate": [2]}
    matched = finetune.finetune(base, prepared / "tok" / "rte", tmp_path / "cm", task="rte", seed=1,
                                params={**PARAMS, "compute_matched": spec})
    ratio = _bert_parameters(32, 64, 4, 2) / _bert_parameters(32, 64, 3, 2)  # 4 layers against 3
    expected = round(10 * ratio)
    assert expected == 13
    assert matched["global_steps"] == expected
    assert matched["compute_matched"]["steps"] == expected and matched["compute_matched"]["base_steps"] == 10
    assert matched["compute_matched"]["flops_ratio"] == pytest.approx(ratio)
    # the Trainer's own FLOP count agrees: the base's extra steps spend what the variant's extra layer costs
    variant_dir = tmp_path / "dup"
    layermap.build_variant(base, variant_dir, [0, 1, 2, 2])
    var = finetune.finetune(variant_dir, prepared / "tok" / "rte", tmp_path / "var", task="rte", seed=1,
                            params=PARAMS)
    assert var["global_steps"] == 10
    assert var["total_flos"] / plain["total_flos"] == pytest.approx(ratio)
    assert matched["total_flos"] / var["total_flos"] == pytest.approx(1.0, abs=0.15)  # 13 steps' own padding


def test_frozen_encoder_changes_no_weight_of_the_checkpoint(prepared, tmp_path):
    from transformers import AutoModelForSequenceClassification

    base = prepared / "models" / "tiny"
    rec = finetune.finetune(base, prepared / "tok" / "rte", tmp_path / "frozen", task="rte", seed=1,
                            params={**PARAMS, "keep_weights": True, "freeze_encoder": True})
    trained = load_file(str(tmp_path / "frozen" / "model" / "model.safetensors"))
    torch.manual_seed(0)
    start = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=2).state_dict()
    checkpoint = load_state_dict(base)
    assert rec["frozen"]["trainable"] == ["classifier.weight", "classifier.bias"]
    n_checked = 0
    for key, tensor in trained.items():
        if key.startswith("bert."):
            assert f"{key}" in start and torch.equal(tensor, start[key]), key
            if key in checkpoint:
                assert torch.equal(tensor, checkpoint[key]), key
                n_checked += 1
    assert n_checked > 40  # embeddings, every layer, the pooler
    assert not torch.equal(trained["classifier.weight"], start["classifier.weight"])  # the classifier did train


def _poison_dev_labels(src, dst):
    """A copy of a tokenized task whose dev labels are all flipped (with a fresh manifest)."""
    shutil.copytree(src, dst)
    data = load_from_disk(str(src))
    dev = data["validation"].map(lambda ex: {"label": 1 - ex["label"]})
    shutil.rmtree(dst / "validation")
    dev.save_to_disk(str(dst / "validation"))
    write_manifest(dst, json.loads((src / "manifest.json").read_text()) | {"poisoned": True})
    return dst


def test_holdout_model_selection_never_reads_the_dev_labels(prepared, tmp_path):
    tok = prepared / "tok" / "rte"
    poisoned = _poison_dev_labels(tok, tmp_path / "poisoned")
    params = {**PARAMS, "epochs": 4, "max_train_samples": None, "max_eval_samples": None,
              "model_selection": "holdout", "holdout_fraction": 0.25}
    runs = {}
    for name, data in (("clean", tok), ("poisoned", poisoned)):
        runs[name] = finetune.finetune(prepared / "models" / "tiny", data, tmp_path / name, task="rte", seed=2,
                                       params=params)
    clean, bad = runs["clean"], runs["poisoned"]
    n_all = len(load_from_disk(str(tok))["train"])
    assert clean["selection"]["holdout_examples"] == n_all // 4 and clean["n_train"] == n_all - n_all // 4
    assert [h["epoch"] for h in clean["selection"]["holdout_scores"]] == [1, 2, 3, 4]
    assert clean["selection"]["chosen_epoch"] in (1, 2, 3, 4)
    best = max(clean["selection"]["holdout_scores"], key=lambda h: h["score"])
    assert clean["selection"]["chosen_epoch"] == best["epoch"]
    assert bad["selection"] == clean["selection"]  # the same epochs scored, the same one chosen
    pc = np.loadtxt(tmp_path / "clean" / "predictions.tsv", skiprows=1, usecols=3, delimiter="\t")
    pb = np.loadtxt(tmp_path / "poisoned" / "predictions.tsv", skiprows=1, usecols=3, delimiter="\t")
    np.testing.assert_array_equal(pc, pb)  # the same weights predicted the dev set
    # ... and only the reported score read the (flipped) labels: accuracy against them is 1 - the clean one
    assert bad["accuracy"] == pytest.approx(1 - clean["accuracy"])


def test_grid_names_pairs_and_settings_of_controls():
    cfg = llconfig.validate({
        "models": {"m": {"source": "org/m"}}, "tasks": ["rte", "mrpc"], "seeds": [1, 2],
        "variants": {"v": {"base": "m", "layers": "0-11,11", "controls": ["compute", "random", "frozen"]},
                     "w": {"base": "m", "duplicate": [3]}},
        "controls": {"frozen": {"learning_rate": 0.01}}})
    assert set(grid.controls(cfg)) == {"v.compute", "v.random", "v.frozen", "m.frozen"}
    assert grid.finetuned_models(cfg) == ["m", "v", "w", "v.compute", "v.random", "m.frozen", "v.frozen"]
    assert grid.comparisons(cfg) == [("v", "m", "base"), ("v", "v.compute", "compute-matched base"),
                                     ("v", "v.random", "random layers"), ("v.frozen", "m.frozen", "frozen encoder"),
                                     ("w", "m", "base")]
    assert [grid.weights_of(cfg, n) for n in ("v.compute", "v.random", "v.frozen", "m.frozen")] == \
        ["m", "v.random", "v", "m"]
    assert grid.run_params(cfg, "v.frozen", "rte")["learning_rate"] == 0.01
    assert grid.run_params(cfg, "v.frozen", "rte")["freeze_encoder"] is True
    assert grid.run_params(cfg, "v.compute", "rte")["compute_matched"] == {"variant": "v", "layers": "0-11,11"}
    assert "compute_matched" not in grid.run_params(cfg, "v", "rte")


class _Killed(Exception):
    pass


def test_a_run_killed_after_its_last_checkpoint_still_scores_its_last_epoch(prepared, tmp_path, monkeypatch):
    """The Trainer saves the last step's checkpoint before it scores that epoch on the held-out slice: a run killed
    in between resumes with no step left to train, and must still score (and may still choose) the last epoch."""
    from layerlens import checkpoint

    params = {**PARAMS, "max_train_samples": None, "max_eval_samples": None, "model_selection": "holdout",
              "holdout_fraction": 0.25, "checkpoint_steps": 10_000, "checkpoint_minutes": None}
    args = dict(task="rte", seed=2, params=params)
    ref = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "ref", **args)

    class KilledAfterTheLastSave(checkpoint.TimedCheckpoints):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                raise _Killed

    with monkeypatch.context() as m:
        m.setattr(checkpoint, "TimedCheckpoints", KilledAfterTheLastSave)
        with pytest.raises(_Killed):
            finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "run", **args)
    run = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "run", **args)
    assert run["resumed_from"] and ref["resumed_from"] is None
    assert [h["epoch"] for h in run["selection"]["holdout_scores"]] == [1, 2]
    assert run["selection"] == ref["selection"] and run["accuracy"] == ref["accuracy"]
