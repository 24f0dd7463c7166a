"""Output change against each model's own MLM logits, one sentence at a time."""

import random

import pytest
import torch
from helpers import sentence
from layerlens import layermap
from layerlens.output_change import output_change
from transformers import AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(i)) for i in range(23)] + ["A dog .", "the the the"]


def direct_change(base_dir, variant_dir, sentences):
    """KL, agreement and the variant's top-1 from each model's own forward, one sentence at a time; special
    tokens and [UNK] not scored."""
    tok = AutoTokenizer.from_pretrained(str(base_dir))
    base = AutoModelForMaskedLM.from_pretrained(str(base_dir)).eval()
    var = AutoModelForMaskedLM.from_pretrained(str(variant_dir)).eval()
    kl, agree, hits, n = 0.0, 0, 0, 0
    with torch.no_grad():
        for s in sentences:
            enc = tok(s, return_tensors="pt", return_special_tokens_mask=True)
            keep = (enc.pop("special_tokens_mask")[0] == 0) & (enc["input_ids"][0] != tok.unk_token_id)
            lb = torch.log_softmax(base(**enc).logits[0][keep], -1)
            lv = torch.log_softmax(var(**enc).logits[0][keep], -1)
            kl += (lb.exp() * (lb - lv)).sum().item()
            agree += (lb.argmax(-1) == lv.argmax(-1)).sum().item()
            hits += (lv.argmax(-1) == enc["input_ids"][0][keep]).sum().item()
            n += int(keep.sum())
    return {"kl": kl / n, "agree_top1": agree / n, "top1_variant": hits / n, "n_tokens": n}


def test_output_change_against_direct_logits(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "same", [0, 1, 2])
    same = output_change(tiny_bert, tmp_path / "same", SENTENCES, bootstrap=0)
    assert same["kl"].iloc[0] == pytest.approx(0, abs=1e-7) and same["agree_top1"].iloc[0] == 1.0
    assert same["kind"].iloc[0] == "identity"

    layermap.build_variant(tiny_bert, tmp_path / "rm", [0, 2])
    got = output_change(tiny_bert, tmp_path / "rm", SENTENCES, bootstrap=200, variant_name="rm").iloc[0]
    want = direct_change(tiny_bert, tmp_path / "rm", SENTENCES)
    assert got["kl"] == pytest.approx(want["kl"], rel=1e-4) and got["n_tokens"] == want["n_tokens"]
    assert got["agree_top1"] == pytest.approx(want["agree_top1"])
    assert got["top1_variant"] == pytest.approx(want["top1_variant"])
    assert got["agree_lo"] <= got["agree_top1"] <= got["agree_hi"]
    assert (got["kind"], got["touched"], got["first_touched"]) == ("remove", "1", 1)


def test_unknown_tokens_are_not_compared(tiny_bert, tmp_path):
    sentences = SENTENCES[:6] + ["the dog ☃ saw 中 .", "a 雪 b", "☃☃ the cat ."]
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    n_unk = sum(tok(s)["input_ids"].count(tok.unk_token_id) for s in sentences)
    layermap.build_variant(tiny_bert, tmp_path / "rm", [0, 2])
    got = output_change(tiny_bert, tmp_path / "rm", sentences, bootstrap=0, batch_size=4, chunk_tokens=5).iloc[0]
    want = direct_change(tiny_bert, tmp_path / "rm", sentences)
    assert n_unk >= 4 and got["n_unk_excluded"] == n_unk and got["n_tokens"] == want["n_tokens"]
    assert got["kl"] == pytest.approx(want["kl"], rel=1e-4)
    assert got["agree_top1"] == pytest.approx(want["agree_top1"])
    assert got["top1_variant"] == pytest.approx(want["top1_variant"])


def test_the_agreement_interval_resamples_examples_not_sentences(tiny_bert, tmp_path):
    """As for the probe: each sentence doubled within its example gives exactly the single sentences' interval."""
    from helpers import write_sentence_table
    from layerlens.download import fetch_model
    from layerlens.output_change import output_change_to_file

    fetch_model(str(tiny_bert), "main", tmp_path / "tiny", name="tiny")
    layermap.build_variant(tmp_path / "tiny", tmp_path / "rm", [0, 2])
    settings = {"max_length": 64, "batch_size": 8, "chunk_tokens": 256, "bootstrap": 500}
    rows = {}
    for name, pairs in (("single", False), ("pairs", True)):
        write_sentence_table(tmp_path / f"{name}.tsv", SENTENCES, pairs=pairs)
        rows[name] = output_change_to_file(tmp_path / "tiny", tmp_path / "rm", tmp_path / f"{name}.tsv",
                                           tmp_path / f"{name}.csv", variant_name="rm", base_name="tiny",
                                           settings=settings).iloc[0]
    assert rows["pairs"]["n_sentences"] == 2 * rows["single"]["n_sentences"]
    for key in ("agree_top1", "agree_lo", "agree_hi"):
        assert rows["pairs"][key] == pytest.approx(rows["single"][key], rel=1e-12), key
    assert rows["single"]["agree_hi"] > rows["single"]["agree_lo"]
