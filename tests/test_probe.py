"""The probe against independent computations: the model's own MLM logits and a naive per-layer loop."""

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import sentence, write_sentence_table
from layerlens import layermap, probe, report
from transformers import AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(i)) for i in range(23)] + ["A dog .", "the the the"]
#: characters the tiny WordPiece vocabulary lacks: the tokenizer gives [UNK] for them
UNKNOWN = ["the dog ☃ saw 中 .", "a 雪 b", "☃☃ the cat ."]


def head_rows(table, mode="input", reading="head"):
    """The rows of one mode and reading, indexed from 0."""
    return table[(table["mode"] == mode) & (table["reading"] == reading)].reset_index(drop=True)


def naive_probe(model_dir, sentences):
    """One sentence at a time, a full MLM forward per layer: the slow, obvious way. Scored: every token but the
    special ones and [UNK] (no head can give back a word it does not know)."""
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    n_layers = model.config.num_hidden_layers + 1
    stats = {k: np.zeros(n_layers) for k in ("top1", "top5", "ce", "agree")}
    n = 0
    with torch.no_grad():
        for s in sentences:
            enc = tok(s, return_tensors="pt", return_special_tokens_mask=True)
            keep = (enc.pop("special_tokens_mask")[0] == 0) & (enc["input_ids"][0] != tok.unk_token_id)
            out = model(**enc, output_hidden_states=True)
            target = enc["input_ids"][0][keep]
            final = out.logits[0][keep].argmax(-1)
            for layer, h in enumerate(out.hidden_states):
                logits = model.cls(h)[0][keep]
                logp = torch.log_softmax(logits, -1)
                stats["top1"][layer] += (logits.argmax(-1) == target).sum().item()
                top5 = logits.topk(5).indices.tolist()
                stats["top5"][layer] += sum(t in row for t, row in zip(target.tolist(), top5))
                stats["ce"][layer] += -logp[torch.arange(len(target)), target].sum().item()
                stats["agree"][layer] += (logits.argmax(-1) == final).sum().item()
            n += len(target)
    return {k: v / n for k, v in stats.items()}, n


@pytest.mark.parametrize("batch_size, chunk", [(32, 4096), (4, 7)])
def test_probe_matches_a_naive_per_layer_loop(tiny_bert, batch_size, chunk):
    table = head_rows(probe.run_probe(tiny_bert, SENTENCES, model_name="tiny", batch_size=batch_size,
                                      chunk_tokens=chunk, bootstrap=0, device="cpu"))
    expected, n = naive_probe(tiny_bert, SENTENCES)
    assert list(table["layer"]) == [0, 1, 2, 3] and set(table["n_tokens"]) == {n}
    np.testing.assert_allclose(table["top1"], expected["top1"], atol=1e-12)
    np.testing.assert_allclose(table["top5"], expected["top5"], atol=1e-12)
    np.testing.assert_allclose(table["cross_entropy"], expected["ce"], rtol=1e-5)
    np.testing.assert_allclose(table["agree_last"], expected["agree"], atol=1e-12)
    assert table["agree_last"].iloc[-1] == 1.0 and table["kl_last"].iloc[-1] == pytest.approx(0, abs=1e-6)
    assert table["top1"].max() > 0.5  # the tiny model was trained to reconstruct its input


def test_unknown_tokens_are_not_scored(tiny_bert):
    """An [UNK] input token is excluded like a special token, and counted."""
    sentences = SENTENCES[:6] + UNKNOWN
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    n_unk = sum(tok(s)["input_ids"].count(tok.unk_token_id) for s in sentences)
    assert n_unk >= 4
    table = head_rows(probe.run_probe(tiny_bert, sentences, batch_size=4, chunk_tokens=7, bootstrap=0, device="cpu"))
    expected, n = naive_probe(tiny_bert, sentences)
    assert set(table["n_tokens"]) == {n} and set(table["n_unk_excluded"]) == {n_unk}
    np.testing.assert_allclose(table["top1"], expected["top1"], atol=1e-12)
    np.testing.assert_allclose(table["top5"], expected["top5"], atol=1e-12)
    np.testing.assert_allclose(table["cross_entropy"], expected["ce"], rtol=1e-5)
    np.testing.assert_allclose(table["agree_last"], expected["agree"], atol=1e-12)


def test_variant_source_layers_and_duplicate_rows(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "v", [0, 1, 1, 2])
    table = head_rows(probe.run_probe(tmp_path / "v", SENTENCES, model_name="v", bootstrap=0))
    assert list(table["source_layer"]) == [0, 1, 2, 2, 3]
    base = head_rows(probe.run_probe(tiny_bert, SENTENCES, model_name="tiny", bootstrap=0))
    # the variant's first two layers are the base's (same inputs, same weights)
    np.testing.assert_allclose(table["top1"][:3], base["top1"][:3])


def test_bootstrap_interval(tiny_bert):
    table = probe.run_probe(tiny_bert, SENTENCES, bootstrap=500, seed=3)
    assert ((table["top1_lo"] <= table["top1"] + 1e-12) & (table["top1"] <= table["top1_hi"] + 1e-12)).all()


def test_plot(tiny_bert, tmp_path):
    table = probe.run_probe(tiny_bert, SENTENCES[:5], model_name="tiny", bootstrap=50)
    report.plot_probe(table, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


SETTINGS = {"max_length": 64, "batch_size": 8, "chunk_tokens": 256, "bootstrap": 500}


@pytest.fixture(scope="module")
def tiny_model(tiny_bert, tmp_path_factory):
    """tiny_bert as the pipeline keeps a model: in a folder with a manifest."""
    from layerlens.download import fetch_model

    out = tmp_path_factory.mktemp("resources") / "tiny"
    fetch_model(str(tiny_bert), "main", out, name="tiny")
    return out


def test_the_interval_resamples_examples_not_sentences(tiny_model, tmp_path):
    """Each sentence doubled as both sentences of one example adds no information: the probe rule gives exactly
    the interval of the single sentences (treated as independent, the doubled sentences would narrow it)."""
    tables = {}
    for name, pairs in (("single", False), ("pairs", True)):
        write_sentence_table(tmp_path / f"{name}.tsv", SENTENCES, pairs=pairs)
        tables[name] = probe.probe_to_file(tiny_model, tmp_path / f"{name}.tsv", tmp_path / f"{name}.csv",
                                           model_name="tiny", settings=SETTINGS)
    single, pairs = head_rows(tables["single"]), head_rows(tables["pairs"])
    assert (pairs["n_sentences"] == 2 * single["n_sentences"]).all()
    np.testing.assert_allclose(pairs["top1"], single["top1"], rtol=1e-12)
    np.testing.assert_allclose(pairs[["top1_lo", "top1_hi"]], single[["top1_lo", "top1_hi"]], rtol=1e-12)
    assert (single["top1_hi"] > single["top1_lo"]).all()


def test_the_probe_rule_uses_the_statistics_seed(tiny_model, tmp_path):
    write_sentence_table(tmp_path / "s.tsv", SENTENCES, pairs=True)
    by_seed = {seed: probe.probe_to_file(tiny_model, tmp_path / "s.tsv", tmp_path / f"{seed}.csv", model_name="tiny",
                                         settings=SETTINGS, seed=seed) for seed in (0, 11)}
    direct = probe.run_probe(tiny_model, [s for s in SENTENCES for _ in (0, 1)], model_name="tiny", max_length=64,
                             batch_size=8, chunk_tokens=256, bootstrap=500, seed=11,
                             examples=[i for i in range(len(SENTENCES)) for _ in (0, 1)])
    pd.testing.assert_frame_equal(by_seed[11], direct)
    assert not np.array_equal(by_seed[0]["top1_lo"], by_seed[11]["top1_lo"])


def tree(root):
    """Every entry under ``root`` (itself included) with its size and mtime: a file written and removed again
    still changes its folder's mtime."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in [root, *root.rglob("*")]}


def test_a_probe_only_variant_is_built_in_memory(tiny_model, tmp_path, monkeypatch):
    """A probe-only variant writes nothing (not in the working folder, not in the temporary folder, not beside
    the base), and its probe table is exactly that of the same variant built on disk."""
    import tempfile

    from layerlens.output_change import output_change_to_file

    spec = {"base": "tiny", "duplicate": [1]}
    layermap.build_variant_from_config(tiny_model, tmp_path / "saved", spec, base_name="tiny", variant_name="v")
    sentences = write_sentence_table(tmp_path / "in" / "s.tsv", SENTENCES, pairs=True)
    (tmp_path / "work").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    watched = [tmp_path / "work", tmp_path / "tmp", tiny_model, tmp_path / "in"]
    before = [tree(root) for root in watched]
    probed = probe.probe_to_file(tiny_model, sentences, tmp_path / "out" / "v.csv", model_name="v",
                                 settings=SETTINGS, variant=spec, base_name="tiny")
    changed = output_change_to_file(tiny_model, None, sentences, tmp_path / "out" / "change.csv", variant_name="v",
                                    base_name="tiny", settings=SETTINGS, variant=spec)
    assert [tree(root) for root in watched] == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["change.csv", "v.csv"]

    saved = probe.probe_to_file(tmp_path / "saved", sentences, tmp_path / "saved.csv", model_name="v",
                                settings=SETTINGS)
    pd.testing.assert_frame_equal(probed, saved, check_exact=True)
    assert list(head_rows(probed)["source_layer"]) == [0, 1, 2, 2, 3]
    saved_change = output_change_to_file(tiny_model, tmp_path / "saved", sentences, tmp_path / "saved_change.csv",
                                         variant_name="v", base_name="tiny", settings=SETTINGS)
    pd.testing.assert_frame_equal(changed, saved_change, check_exact=True)


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "distilbert", "electra", "deberta-v2",
                                    "modernbert"])
def test_in_memory_variant_equals_the_saved_one_in_every_family(family, tmp_path):
    from helpers import make_tiny_family

    base = make_tiny_family(tmp_path / "base", family)
    layermap.build_variant(base, tmp_path / "saved", [0, 1, 1, 2])
    saved = probe.run_probe(tmp_path / "saved", SENTENCES[:8], bootstrap=50, device="cpu")
    in_memory = probe.run_probe(base, SENTENCES[:8], layers=[0, 1, 1, 2], bootstrap=50, device="cpu")
    pd.testing.assert_frame_equal(in_memory, saved, check_exact=True)


def test_a_half_precision_checkpoint_is_probed_in_float32(tiny_bert, tmp_path):
    """transformers 5 loads with dtype="auto": a checkpoint saved in bf16 must be probed (and its probe-only
    variants built) in float32, exactly as the same weights saved in float32."""
    import shutil

    half, full = tmp_path / "bf16", tmp_path / "fp32"
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_bert), dtype=torch.float32).to(torch.bfloat16)
    model.save_pretrained(str(half))
    model.to(torch.float32).save_pretrained(str(full))  # the same (bf16-rounded) values, stored as float32
    for folder in (half, full):
        for f in tiny_bert.iterdir():
            if f.name.startswith(("vocab", "tokenizer", "special")):
                shutil.copy(f, folder / f.name)
    assert json.loads((half / "config.json").read_text())["dtype"] == "bfloat16"
    a = probe.run_probe(half, SENTENCES, model_name="m", bootstrap=0, device="cpu")
    b = probe.run_probe(full, SENTENCES, model_name="m", bootstrap=0, device="cpu")
    pd.testing.assert_frame_equal(a, b)
    variant, _ = layermap.variant_model(half, [0, 1, 2, 2])
    assert {p.dtype for p in variant.parameters()} == {torch.float32}
