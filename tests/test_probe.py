"""The probe against independent computations: the model's own MLM logits and a naive per-layer loop."""

import random

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import sentence
from layerlens import layermap, probe, report
from layerlens.errors import InputError
from transformers import AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(i)) for i in range(23)] + ["A dog .", "the the the"]


def naive_probe(model_dir, sentences):
    """One sentence at a time, a full MLM forward per layer: the slow, obvious way."""
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    n_layers = model.config.num_hidden_layers + 1
    stats = {k: np.zeros(n_layers) for k in ("top1", "top5", "ce", "agree")}
    n = 0
    with torch.no_grad():
        for s in sentences:
            enc = tok(s, return_tensors="pt", return_special_tokens_mask=True)
            keep = enc.pop("special_tokens_mask")[0] == 0
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
    table = probe.run_probe(tiny_bert, SENTENCES, model_name="tiny", batch_size=batch_size, chunk_tokens=chunk,
                            bootstrap=0, device="cpu")
    expected, n = naive_probe(tiny_bert, SENTENCES)
    assert list(table["layer"]) == [0, 1, 2, 3] and set(table["n_tokens"]) == {n}
    np.testing.assert_allclose(table["top1"], expected["top1"], atol=1e-12)
    np.testing.assert_allclose(table["top5"], expected["top5"], atol=1e-12)
    np.testing.assert_allclose(table["cross_entropy"], expected["ce"], rtol=1e-5)
    np.testing.assert_allclose(table["agree_last"], expected["agree"], atol=1e-12)
    assert table["agree_last"].iloc[-1] == 1.0 and table["kl_last"].iloc[-1] == pytest.approx(0, abs=1e-6)
    assert table["top1"].max() > 0.5  # the tiny model was trained to reconstruct its input


def test_last_layer_equals_the_models_own_mlm_argmax(tiny_bert):
    """The probe's last-layer predictions are exactly AutoModelForMaskedLM's argmax on the same tokens."""
    model, adapter = probe.load_mlm(tiny_bert)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    batch = tok(SENTENCES, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    keep = (batch["attention_mask"] == 1) & (batch.pop("special_tokens_mask") == 0)
    with torch.no_grad():
        own = model(**batch).logits.argmax(-1)[keep]
        hidden = adapter.hidden_states(model, batch["input_ids"], batch["attention_mask"])
        ours = adapter.mlm_logits(model, hidden[-1][keep]).argmax(-1)
    assert torch.equal(own, ours)


def test_variant_source_layers_and_duplicate_rows(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "v", [0, 1, 1, 2])
    table = probe.run_probe(tmp_path / "v", SENTENCES, model_name="v", bootstrap=0)
    assert list(table["source_layer"]) == [0, 1, 2, 2, 3]
    base = probe.run_probe(tiny_bert, SENTENCES, model_name="tiny", bootstrap=0)
    # the variant's first two layers are the base's (same inputs, same weights)
    np.testing.assert_allclose(table["top1"][:3], base["top1"][:3])


def test_bootstrap_interval(tiny_bert):
    table = probe.run_probe(tiny_bert, SENTENCES, bootstrap=500, seed=3)
    assert ((table["top1_lo"] <= table["top1"] + 1e-12) & (table["top1"] <= table["top1_hi"] + 1e-12)).all()
    hits = np.array([[1, 0, 3, 2]])
    counts = np.array([1, 2, 3, 2])
    lo, hi = probe.bootstrap_ratio_ci(hits, counts, 2000, seed=0)
    assert lo[0] < 6 / 8 < hi[0] and 0 <= lo[0] and hi[0] <= 1
    lo2, hi2 = probe.bootstrap_ratio_ci(np.array([[2, 2, 2, 2]]), np.array([2, 2, 2, 2]), 100)
    assert lo2[0] == hi2[0] == 1.0


def test_sentence_selection_is_deterministic_and_round_robin(tiny_glue, tmp_path):
    from layerlens.download import fetch_glue

    dirs = {t: tmp_path / t for t in ("rte", "sst2")}
    for t, d in dirs.items():
        fetch_glue(t, "tsv", d, tsv_dir=tiny_glue)
    a = probe.select_sentences(dirs, 30)
    b = probe.select_sentences(dirs, 30)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 30 and a["sentence"].is_unique
    assert list(a["task"][:4]) == ["rte", "sst2", "rte", "sst2"]
    assert (a[a.task == "sst2"]["idx"].diff().dropna() > 0).all()  # in dev-set order
    out = tmp_path / "s.tsv"
    probe.write_sentences(dirs, 5, out)
    assert probe.read_sentences(out) == a["sentence"][:5].tolist()


def test_checkpoint_without_mlm_head_gets_a_clear_error(tiny_bert, tmp_path):
    from transformers import AutoModel

    AutoModel.from_pretrained(str(tiny_bert)).save_pretrained(str(tmp_path / "enc"))
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(tmp_path / "enc"))
    with pytest.raises(InputError, match="no \\(complete\\) masked-LM head.*probe: \\{head: fit\\}"):
        probe.load_mlm(tmp_path / "enc")


def test_plot(tiny_bert, tmp_path):
    table = probe.run_probe(tiny_bert, SENTENCES[:5], model_name="tiny", bootstrap=50)
    report.plot_probe(table, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_output_change_against_direct_logits(tiny_bert, tmp_path):
    layermap.build_variant(tiny_bert, tmp_path / "same", [0, 1, 2])
    same = probe.output_change(tiny_bert, tmp_path / "same", SENTENCES, bootstrap=0)
    assert same["kl"].iloc[0] == pytest.approx(0, abs=1e-7) and same["agree_top1"].iloc[0] == 1.0
    assert same["kind"].iloc[0] == "identity"

    layermap.build_variant(tiny_bert, tmp_path / "rm", [0, 2])
    got = probe.output_change(tiny_bert, tmp_path / "rm", SENTENCES, bootstrap=200, variant_name="rm").iloc[0]
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    base = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    var = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "rm")).eval()
    kl, agree, hits, n = 0.0, 0, 0, 0
    with torch.no_grad():
        for s in SENTENCES:
            enc = tok(s, return_tensors="pt", return_special_tokens_mask=True)
            keep = enc.pop("special_tokens_mask")[0] == 0
            lb = torch.log_softmax(base(**enc).logits[0][keep], -1)
            lv = torch.log_softmax(var(**enc).logits[0][keep], -1)
            kl += (lb.exp() * (lb - lv)).sum().item()
            agree += (lb.argmax(-1) == lv.argmax(-1)).sum().item()
            hits += (lv.argmax(-1) == enc["input_ids"][0][keep]).sum().item()
            n += int(keep.sum())
    assert got["kl"] == pytest.approx(kl / n, rel=1e-4)
    assert got["agree_top1"] == pytest.approx(agree / n) and got["top1_variant"] == pytest.approx(hits / n)
    assert got["agree_lo"] <= got["agree_top1"] <= got["agree_hi"]
    assert (got["kind"], got["touched"], got["first_touched"]) == ("remove", "1", 1)
