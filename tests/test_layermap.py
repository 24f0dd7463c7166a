"""Layer maps: parsing, and variants checked against the base model computed independently."""

import json

import numpy as np
import pytest
import torch
from layerlens import layermap
from layerlens.errors import InputError
from safetensors import safe_open
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer


def test_parse_and_format():
    assert layermap.parse_layers("0-11,11") == list(range(12)) + [11]
    assert layermap.parse_layers(" 0 - 2 , 5,3-4") == [0, 1, 2, 5, 3, 4]
    assert layermap.parse_layers([3, 3, 1]) == [3, 3, 1]
    assert layermap.format_layers(list(range(12)) + [11]) == "0-11,11"
    assert layermap.format_layers([0, 1, 2, 5, 3, 4]) == "0-2,5,3-4"
    for bad in ("", "1,,2", "a", "-1", "3-", "1-2-3"):
        with pytest.raises(ValueError):
            layermap.parse_layers(bad)


def test_descending_ranges_run_backwards_and_round_trip():
    assert layermap.parse_layers("11-6") == [11, 10, 9, 8, 7, 6]
    assert layermap.parse_layers("0-5,11-6") == [0, 1, 2, 3, 4, 5, 11, 10, 9, 8, 7, 6]
    assert layermap.parse_layers("3-1") == [3, 2, 1] and layermap.parse_layers("4-4") == [4]
    assert layermap.format_layers([0, 1, 2, 5, 4, 3]) == "0-2,5-3"
    assert layermap.format_layers([3, 2, 2, 3]) == "3-2,2-3"
    rng = np.random.default_rng(0)
    for _ in range(500):  # any order, repeats included: parse(format(x)) is x
        layers = [int(i) for i in rng.integers(0, 6, size=rng.integers(1, 12))]
        assert layermap.parse_layers(layermap.format_layers(layers)) == layers


def test_sugar():
    assert layermap.sugar_layers(4, duplicate=[1]) == [0, 1, 1, 2, 3]
    assert layermap.sugar_layers(4, duplicate=[1, 1, 3]) == [0, 1, 1, 1, 2, 3, 3]
    assert layermap.sugar_layers(4, remove=[0, 2]) == [1, 3]
    assert layermap.sugar_layers(4, duplicate=[3], remove=[0]) == [1, 2, 3, 3]
    with pytest.raises(ValueError, match="both removed and duplicated"):
        layermap.sugar_layers(4, duplicate=[1], remove=[1])
    with pytest.raises(ValueError, match="out of range"):
        layermap.sugar_layers(4, remove=[4])
    with pytest.raises(ValueError, match="zero layers"):
        layermap.resolve_layers({"remove": [0, 1]}, 2)


def _inputs(model_dir, texts=("the cat sees the dog .", "a woman reads a very old book today .")):
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return tok(list(texts), padding=True, return_tensors="pt")


def test_identity_map_reproduces_the_base_exactly(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "id", [0, 1, 2])
    batch = _inputs(tiny_bert)
    for cls in (AutoModelForMaskedLM, AutoModel):
        base = cls.from_pretrained(str(tiny_bert)).eval()
        var = cls.from_pretrained(str(tmp_path / "id")).eval()
        with torch.no_grad():
            a, b = base(**batch, output_hidden_states=True), var(**batch, output_hidden_states=True)
        for x, y in zip(a.hidden_states, b.hidden_states):
            assert torch.equal(x, y)
        if cls is AutoModelForMaskedLM:
            assert torch.equal(a.logits, b.logits)
        else:
            assert torch.equal(a.pooler_output, b.pooler_output)


def test_duplicated_layer_equals_applying_its_source_twice(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "dup", [0, 1, 1, 2])
    base = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    var = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "dup")).eval()
    batch = _inputs(tiny_bert, ("the cat sees the dog .",))  # one sentence: no padding mask needed
    with torch.no_grad():
        h = base.bert.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
        expected = [h]
        for src in (0, 1, 1, 2):  # the base's own layers, applied by hand
            h = base.bert.encoder.layer[src](h)
            expected.append(h)
        got = var(**batch, output_hidden_states=True)
        assert len(got.hidden_states) == 5
        for e, g in zip(expected, got.hidden_states):
            torch.testing.assert_close(g, e, rtol=0, atol=1e-6)
        torch.testing.assert_close(got.logits, base.cls(expected[-1]), rtol=0, atol=1e-5)


def test_variant_carries_head_pooler_tokenizer_and_reloads_cleanly(tiny_bert, tmp_path):
    prov = layermap.build_variant(tiny_bert, tmp_path / "v", [0, 0, 1, 2, 2], base_name="tiny", variant_name="v")
    out = tmp_path / "v"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 5 and cfg["layerlens_layer_map"]["layers"] == [0, 0, 1, 2, 2]
    assert prov["layers_spec"] == "0,0-2,2" and json.loads((out / "layer_map.json").read_text())["base"] == "tiny"
    vocab = AutoTokenizer.from_pretrained(str(out)).get_vocab()
    assert vocab == AutoTokenizer.from_pretrained(str(tiny_bert)).get_vocab()

    base_keys = set(safe_open(str(tiny_bert / "model.safetensors"), "pt").keys())
    with safe_open(str(out / "model.safetensors"), "pt") as f, \
            safe_open(str(tiny_bert / "model.safetensors"), "pt") as g:
        keys = set(f.keys())
        non_layer = {k for k in base_keys if ".layer." not in k}
        assert non_layer <= keys  # embeddings, full MLM head, pooler, NSP head
        assert {"cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
                "cls.predictions.bias", "bert.pooler.dense.weight"} <= keys
        for k in non_layer:
            assert torch.equal(f.get_tensor(k), g.get_tensor(k))
        for new, src in enumerate([0, 0, 1, 2, 2]):
            for k in [k for k in base_keys if k.startswith(f"bert.encoder.layer.{src}.")]:
                assert torch.equal(f.get_tensor(k.replace(f"layer.{src}.", f"layer.{new}.")), g.get_tensor(k))

    _, base_info = AutoModelForMaskedLM.from_pretrained(str(tiny_bert), output_loading_info=True)
    mlm, info = AutoModelForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert info["missing_keys"] == set() and info["mismatched_keys"] == set()
    assert info["unexpected_keys"] == base_info["unexpected_keys"]  # only the pooler / NSP head, as for the base
    # the decoder stays tied to the input embeddings
    assert mlm.cls.predictions.decoder.weight.data_ptr() == mlm.bert.embeddings.word_embeddings.weight.data_ptr()
    _, sc_info = AutoModelForSequenceClassification.from_pretrained(str(out), num_labels=2, output_loading_info=True)
    assert sc_info["missing_keys"] == {"classifier.weight", "classifier.bias"}  # the pooler came along


def test_mlm_only_checkpoint_reloads_with_no_missing_or_unexpected(tiny_bert_mlm_only, tmp_path):
    layermap.build_variant(tiny_bert_mlm_only, tmp_path / "v", [1, 0, 1])
    _, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "v"), output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()


def test_tied_decoder_stays_tied_after_saving_again(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "v", [2, 2])
    m = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "v"))
    m.save_pretrained(str(tmp_path / "again"))
    m2 = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "again"))
    assert m2.cls.predictions.decoder.weight.data_ptr() == m2.bert.embeddings.word_embeddings.weight.data_ptr()


def test_bad_maps_are_refused_before_writing(tiny_bert, tmp_path):
    with pytest.raises(InputError, match="zero layers"):
        layermap.build_variant(tiny_bert, tmp_path / "v", [])
    with pytest.raises(InputError, match="layer 3 is out of range"):
        layermap.build_variant(tiny_bert, tmp_path / "v", [0, 3])
    assert not (tmp_path / "v").exists()


def test_build_from_config_entry(tiny_bert, tmp_path):
    from layerlens.download import fetch_model
    from layerlens.errors import ConfigError

    fetch_model(str(tiny_bert), "main", tmp_path / "base", name="tiny")
    prov = layermap.build_variant_from_config(tmp_path / "base", tmp_path / "v", {"base": "tiny", "duplicate": [1]},
                                              base_name="tiny", variant_name="v")
    assert prov["layers"] == [0, 1, 1, 2]
    with pytest.raises(ConfigError, match="variants.w.layers.*out of range"):
        layermap.build_variant_from_config(tmp_path / "base", tmp_path / "w", {"base": "tiny", "layers": "0-5"},
                                           base_name="tiny", variant_name="w")


def test_describe():
    assert layermap.describe([0, 1, 1, 2], 3) == {"kind": "duplicate", "touched": [1], "first": 1}
    assert layermap.describe([0, 2], 3) == {"kind": "remove", "touched": [1], "first": 1}
    assert layermap.describe([0, 1, 2, 1, 2, 3], 4)["kind"] == "duplicate_block"
    assert layermap.describe([0, 3, 2, 1, 4], 5) == {"kind": "reorder", "touched": [1, 3], "first": 1}
    assert layermap.describe([0, 2, 2, 2, 4], 5) == {"kind": "replace", "touched": [1, 3], "first": 1}
    assert layermap.describe([2, 1, 0, 0], 3)["kind"] == "custom"
    assert layermap.describe([0, 1, 2], 3)["kind"] == "identity"


def test_probe_only_variant_is_the_saved_variant(tiny_bert, tmp_path):
    """Built in memory from the base's tensors, it gives exactly the saved variant's logits."""
    from layerlens.download import fetch_model

    fetch_model(str(tiny_bert), "main", tmp_path / "base", name="tiny")
    spec = {"base": "tiny", "duplicate": [1]}
    layermap.build_variant_from_config(tmp_path / "base", tmp_path / "saved", spec)
    batch = _inputs(tiny_bert)
    a, info = layermap.variant_model(tmp_path / "base", layermap.config_layers(tmp_path / "base", spec))
    b = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "saved")).eval()
    assert a.config.num_hidden_layers == b.config.num_hidden_layers == 4 and not info["missing_keys"]
    with torch.no_grad():
        assert torch.equal(a.eval()(**batch).logits, b(**batch).logits)
