"""The probe's masked mode, its metrics and its controls, against independent computations: transformers' own
forward one pass at a time, and every metric by hand in numpy/scipy (float64)."""

import random

import numpy as np
import pytest
import torch
from helpers import sentence
from layerlens import head, lens_metrics, masking, probe
from scipy.special import log_softmax
from transformers import AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(i)) for i in range(23)] + ["A dog .", "the dog ☃ saw 中 ."]


# --- masking ---------------------------------------------------------------------------------------------


def test_random_masking_patterns():
    ids = list(range(100, 140))
    candidates = list(range(1, 39))  # position 0 and 39 are special
    spec = masking.Masking(seed=4)
    shares = []
    for i in range(400):
        (p,) = masking.patterns(i, ids, candidates, spec, mask_id=4, vocab_size=500)
        assert p.sentence == i and p.scored and set(p.scored) <= set(candidates)
        assert all(p.input_ids[q] == 4 for q in p.scored)  # corruption: mask, every one
        assert all(p.input_ids[q] == ids[q] for q in range(40) if q not in p.scored)
        shares.append(len(p.scored) / len(candidates))
    assert 0.14 < np.mean(shares) < 0.16
    again = masking.patterns(7, ids, candidates, spec, 4, 500)
    assert again == masking.patterns(7, ids, candidates, spec, 4, 500)  # a function of (seed, sentence) only
    assert again != masking.patterns(7, ids, candidates, masking.Masking(seed=5), 4, 500)
    # at least one position per sentence, however short
    for i in range(50):
        (p,) = masking.patterns(i, [9, 10, 11], [1], spec, 4, 500)
        assert p.scored == [1] and p.input_ids == [9, 4, 11]
    assert masking.patterns(0, [9, 10], [], spec, 4, 500) == []


def test_bert_corruption_and_each_position():
    ids = list(range(100, 140))
    bert = masking.Masking(corruption="bert", probability=0.5)
    kinds = {"mask": 0, "kept": 0, "other": 0}
    for i in range(600):
        (p,) = masking.patterns(i, ids, list(range(40)), bert, 4, 1000)
        for q in p.scored:
            t = p.input_ids[q]
            kinds["mask" if t == 4 else "kept" if t == ids[q] else "other"] += 1
    n = sum(kinds.values())
    assert 0.78 < kinds["mask"] / n < 0.82 and 0.08 < kinds["kept"] / n < 0.12 and 0.08 < kinds["other"] / n < 0.12

    each = masking.Masking(scheme="each", max_positions=5)
    short = masking.patterns(0, ids[:4], [1, 2], each, 4, 1000)
    assert [p.scored for p in short] == [[1], [2]] and short[0].input_ids == [100, 4, 102, 103]
    capped = masking.patterns(3, ids, list(range(1, 39)), each, 4, 1000)
    assert len(capped) == 5 and len({p.scored[0] for p in capped}) == 5
    assert all(sum(t == 4 for t in p.input_ids) == 1 for p in capped)
    with pytest.raises(ValueError, match="scheme must be one of random, each"):
        masking.Masking(scheme="all")


# --- every metric by hand --------------------------------------------------------------------------------


def naive_ece(conf, hit, p=2):
    """tuned-lens's monotonic sweep, written out: array_split into b bins while accuracies rise strictly in (0, 1)."""
    conf, hit = np.asarray(conf, float), np.asarray(hit, float)
    order = sorted(range(len(conf)), key=lambda i: (round(conf[i], 6), hit[i]))  # ties: misses first
    conf, hit = conf[order], hit[order]
    n, best = len(conf), [np.arange(len(conf))]
    for b in range(2, n + 1):
        bins = np.array_split(np.arange(n), b)
        acc = [hit[i].mean() for i in bins]
        if not (all(x < y for x, y in zip(acc, acc[1:])) and all(0 < a < 1 for a in acc)):
            break
        best = bins
    return sum(len(i) / n * abs(hit[i].mean() - conf[i].mean()) ** p for i in best) ** (1 / p), len(best)


def test_calibration_error_by_hand():
    # two bins (a third would hold only misses): |0.25 - 0.5| and |0.75 - 0.9|, weighted 1/2 each, L2
    ece, bins = lens_metrics.calibration_error([.5, .5, .5, .5, .9, .9, .9, .9], [0, 0, 0, 1, 1, 1, 0, 1])
    assert bins == 2 and ece == pytest.approx(np.sqrt(0.5 * 0.25 ** 2 + 0.5 * 0.15 ** 2), abs=1e-12)
    # perfectly calibrated in two bins
    assert lens_metrics.calibration_error([.1, .2, .3, .4, .6, .7, .8, .9], [0, 1, 0, 0, 1, 1, 0, 1]) == (
        pytest.approx(0, abs=1e-12), 2)
    # one bin: accuracy 1/4 against confidence 0.9
    assert lens_metrics.calibration_error([.9] * 4, [1, 0, 0, 0]) == (pytest.approx(0.65), 1)
    assert lens_metrics.calibration_error([0.5], [1])[1] == 0
    rng = np.random.default_rng(0)
    for _ in range(20):
        conf = rng.random(300)
        hit = rng.random(300) < conf ** rng.uniform(0.5, 2)
        got = lens_metrics.calibration_error(conf, hit)
        want = naive_ece(conf, hit)
        assert got[1] == want[1] and got[0] == pytest.approx(want[0], abs=1e-12)


def passes_of(model_dir, sentences, spec):
    """(input ids, scored positions, targets) of every pass: each sentence as is, or its masking patterns."""
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    out = []
    for i, s in enumerate(sentences):
        enc = tok(s, return_special_tokens_mask=True)
        ids, special = enc["input_ids"], enc["special_tokens_mask"]
        cand = [q for q in range(len(ids)) if not special[q] and ids[q] != tok.unk_token_id]
        if spec is None:
            out.append((ids, cand, [ids[q] for q in cand]))
        else:
            out += [(p.input_ids, p.scored, [ids[q] for q in p.scored])
                    for p in masking.patterns(i, ids, cand, spec, tok.mask_token_id, len(tok))]
    return out


def naive_metrics(model_dir, passes, reading="head"):
    """Every metric, one pass at a time through AutoModelForMaskedLM, by hand in float64 numpy."""
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    emb = model.get_input_embeddings().weight
    per = {}
    with torch.no_grad():
        for ids, scored, targets in passes:
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            final = log_softmax(out.logits[0, scored].double().numpy(), -1)
            for layer, h in enumerate(out.hidden_states):
                h = h[0, scored]
                logits = (model.cls(h) if reading == "head" else h @ emb.T).double().numpy()
                logp = log_softmax(logits, -1)
                t = np.array(targets)
                tl = logp[np.arange(len(t)), t]
                d = per.setdefault(layer, {k: [] for k in ("hit", "top5", "nll", "ent", "rank", "conf", "agree",
                                                           "kl")})
                d["hit"] += list(logp.argmax(-1) == t)
                d["top5"] += [ti in np.argsort(-row)[:5] for ti, row in zip(t, logp)]
                d["nll"] += list(-tl)
                d["ent"] += list(-(np.exp(logp) * logp).sum(-1))
                d["rank"] += list(1 + (logp > tl[:, None]).sum(-1))
                d["conf"] += list(np.exp(logp.max(-1)))
                d["agree"] += list(logp.argmax(-1) == final.argmax(-1))
                d["kl"] += list((np.exp(final) * (final - logp)).sum(-1))
    return per


@pytest.mark.parametrize("mode, spec", [("input", None), ("masked", masking.Masking(seed=1)),
                                        ("masked", masking.Masking(scheme="each", corruption="bert", seed=2))])
@pytest.mark.parametrize("reading", ["head", "embeddings"])
def test_every_metric_against_a_naive_computation(tiny_bert, mode, spec, reading):
    table = probe.run_probe(tiny_bert, SENTENCES, modes=[mode], masking=spec, bootstrap=0, batch_size=4,
                            chunk_tokens=9, device="cpu")
    table = table[table["reading"] == reading].reset_index(drop=True)
    per = naive_metrics(tiny_bert, passes_of(tiny_bert, SENTENCES, spec), reading)
    assert list(table["layer"]) == sorted(per) and set(table["mode"]) == {mode}
    for layer, d in per.items():
        row = table.loc[layer]
        assert row["n_tokens"] == len(d["hit"])
        assert row["top1"] == pytest.approx(np.mean(d["hit"]), abs=1e-12)
        assert row["top5"] == pytest.approx(np.mean(d["top5"]), abs=1e-12)
        assert row["cross_entropy"] == pytest.approx(np.mean(d["nll"]), rel=1e-4)
        assert row["entropy"] == pytest.approx(np.mean(d["ent"]), rel=1e-4)
        assert row["mrr"] == pytest.approx(np.mean(1 / np.array(d["rank"])), rel=1e-6)
        assert row["median_rank"] == np.median(d["rank"])
        ece, bins = naive_ece(d["conf"], d["hit"])
        assert row["ece"] == pytest.approx(ece, abs=1e-5) and row["ece_bins"] == bins
        assert row["agree_last"] == pytest.approx(np.mean(d["agree"]), abs=1e-12)
        assert row["kl_last"] == pytest.approx(np.mean(d["kl"]), abs=1e-5)


def test_masked_layer0_sees_only_the_mask_and_the_position(tiny_bert):
    """Under `corruption: mask` a masked position's layer-0 state is the mask token's embedding at that position
    (plus the segment): the same in every pattern that masks that position, so layer 0's reading is a floor."""
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    by_position = {}
    with torch.no_grad():
        for ids, scored, _ in passes_of(tiny_bert, SENTENCES * 2, masking.Masking(scheme="each")):
            layer0 = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[0][0, scored[0]]
            by_position.setdefault(scored[0], []).append(layer0)
    assert len(by_position) > 5
    for states in by_position.values():
        torch.testing.assert_close(torch.stack(states), states[0].expand(len(states), -1), rtol=0, atol=1e-6)


# --- the controls ----------------------------------------------------------------------------------------


def test_random_head_reads_at_chance_and_the_trained_head_reads_its_last_layer(tiny_bert, tmp_path):
    """Masked mode, every token in turn. A fresh (untrained) head on the same encoder: no layer beats the best
    constant guess (the commonest target) beyond binomial noise. The model's own head, trained on its last
    layer: that layer's top-1 is exactly transformers' own masked-LM prediction on the masked inputs."""
    spec = masking.Masking(scheme="each")
    head.fit_head(tiny_bert, SENTENCES, tmp_path / "fresh", steps=1, batch_size=4, learning_rate=1e-12, seed=9,
                  tie_decoder=False)
    fresh = probe.run_probe(tiny_bert, SENTENCES, modes=["masked"], masking=spec, bootstrap=0,
                            head_dir=tmp_path / "fresh", head_name="fit-untied", embeddings=False)
    targets = [t for _, _, ts in passes_of(tiny_bert, SENTENCES, spec) for t in ts]
    majority = max(np.bincount(targets)) / len(targets)
    bound = majority + 3 * np.sqrt(majority * (1 - majority) / len(targets))
    assert (fresh["n_tokens"] == len(targets)).all() and (fresh["top1"] <= bound).all()

    own = probe.run_probe(tiny_bert, SENTENCES, modes=["masked"], masking=spec, bootstrap=0, embeddings=False)
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    hits = []
    with torch.no_grad():
        for ids, scored, ts in passes_of(tiny_bert, SENTENCES, spec):
            hits += (model(input_ids=torch.tensor([ids])).logits[0, scored].argmax(-1) == torch.tensor(ts)).tolist()
    assert own["top1"].iloc[-1] == pytest.approx(np.mean(hits), abs=1e-12)
    assert own["top1"].iloc[-1] > fresh["top1"].max()
