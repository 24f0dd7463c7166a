"""Per-layer translators (a tuned lens for encoders): identity start, the translated reading computed by hand."""

import random

import numpy as np
import pytest
import torch
from helpers import sentence
from layerlens import probe, translators
from layerlens.errors import InputError
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(100 + i)) for i in range(16)]
TRAIN = [sentence(random.Random(i)) for i in range(64)]


def fit(model_dir, out, **kwargs):
    settings = {"steps": 3, "batch_size": 8, "learning_rate": 1e-2, "seed": 0, **kwargs}
    return translators.fit_translators(model_dir, TRAIN, out, heads={"pretrained": None}, modes=["input", "masked"],
                                       masking={"scheme": "random", "probability": 0.3}, **settings)


def test_identity_start_gives_the_raw_reading(tiny_bert, tmp_path):
    """Translators that have not moved from their identity start read every layer exactly as the raw head."""
    fit(tiny_bert, tmp_path / "t", learning_rate=1e-30)
    table = probe.run_probe(tiny_bert, SENTENCES, modes=["input", "masked"], bootstrap=0, embeddings=False,
                            translator_dir=tmp_path / "t")
    raw, translated = (table[table["reading"] == r].drop(columns="reading").reset_index(drop=True)
                       for r in ("head", "translated"))
    np.testing.assert_allclose(translated[["top1", "top5", "mrr"]], raw[["top1", "top5", "mrr"]], atol=1e-12)
    np.testing.assert_allclose(translated[["cross_entropy", "kl_last"]], raw[["cross_entropy", "kl_last"]],
                               atol=1e-5)


def test_translated_reading_by_hand(tiny_bert, tmp_path):
    """Layer l's translated top-1 is head(W_l h + b_l) with the saved W_l, b_l, computed here one sentence at a
    time through AutoModelForMaskedLM; the last layer has no translator; the record says what was fitted."""
    info = fit(tiny_bert, tmp_path / "t")
    assert set(info["sets"]) == {"pretrained_input", "pretrained_masked"}
    assert all(len(s["first_loss"]) == 3 == s["layers"] for s in info["sets"].values())  # layers 0..2 of 3
    tensors = load_file(str(tmp_path / "t" / translators.translator_file("pretrained", "input")))
    assert sorted(tensors) == sorted(f"{i}.{p}" for i in range(3) for p in ("weight", "bias"))
    assert not torch.allclose(tensors["0.weight"], torch.eye(tensors["0.weight"].shape[0]))  # it moved

    table = probe.run_probe(tiny_bert, SENTENCES, bootstrap=0, embeddings=False, translator_dir=tmp_path / "t")
    translated = table[table["reading"] == "translated"].reset_index(drop=True)
    raw = table[table["reading"] == "head"].reset_index(drop=True)
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    hits, n = np.zeros(4), 0
    with torch.no_grad():
        for s in SENTENCES:
            enc = tok(s, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states
            target = enc["input_ids"][0, 1:-1]
            for layer, h in enumerate(states):
                h = h[0, 1:-1]
                if layer < 3:
                    h = h @ tensors[f"{layer}.weight"].T + tensors[f"{layer}.bias"]
                hits[layer] += (model.cls(h).argmax(-1) == target).sum().item()
            n += len(target)
    np.testing.assert_allclose(translated["top1"], hits / n, atol=1e-12)
    assert translated.iloc[-1]["top1"] == raw.iloc[-1]["top1"]


def test_a_missing_set_is_named(tiny_bert, tmp_path):
    fit(tiny_bert, tmp_path / "t", steps=1)
    with pytest.raises(InputError, match="no translators for head 'fit-tied' in mode 'input'"):
        probe.run_probe(tiny_bert, SENTENCES, bootstrap=0, head_name="fit-tied", translator_dir=tmp_path / "t")
