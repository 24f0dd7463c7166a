"""Every supported family, on a tiny random model built here: layer maps and the probe, checked against the
base model's own modules applied by hand and against the model's own masked-LM forward."""

import json

import pytest
import torch
from helpers import make_tiny_family
from layerlens import forward, layermap, probe
from layerlens.errors import InputError
from layerlens.families import adapter_for, adapter_for_dir, supported_model_types
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

FAMILIES = ["bert", "roberta", "xlm-roberta", "albert", "distilbert", "electra", "deberta-v2",
            "deberta-v2-lmhead", "modernbert"]
SENTENCES = ["the cat sees the dog and the bird today .", "a man reads .", "she sang a very old song ."]
# one sentence, unpadded, longer than ModernBERT's local window (4) so global and local attention differ
LONG = "the old man often reads a good book about the river city ."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> folder of a 3-layer random masked-LM model, built once per module."""
    built = {}

    def get(family, **overrides):
        key = (family, tuple(sorted(overrides.items())))
        if key not in built:
            spec = "deberta-v2" if family == "deberta-v2-lmhead" else family
            if family == "deberta-v2-lmhead":
                overrides = {"legacy": False, **overrides}
            built[key] = make_tiny_family(tmp_path_factory.mktemp("fam") / family, spec, **overrides)
        return built[key]

    return get


def encode(model_dir, texts):
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok(list(texts), padding=True, return_tensors="pt", return_special_tokens_mask=True)
    return enc["input_ids"], enc["attention_mask"], enc["special_tokens_mask"]


def load(model_dir):
    return AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()


# --- independent references: the model's own modules, called by hand -------------------------------------


def by_hand(family, model, ids, sources):
    """Embedding output, then the base's layers ``sources`` applied in order to one unpadded sentence."""
    base = model.base_model
    if family in ("bert", "roberta", "xlm-roberta", "electra"):
        h = base.embeddings(input_ids=ids)
        if hasattr(base, "embeddings_project"):
            h = base.embeddings_project(h)
        step = lambda i, h: base.encoder.layer[i](h)  # noqa: E731
    elif family == "albert":
        h = base.encoder.embedding_hidden_mapping_in(base.embeddings(ids))
        depth, groups = model.config.num_hidden_layers, model.config.num_hidden_groups
        step = lambda i, h: base.encoder.albert_layer_groups[int(i / (depth / groups))](h)  # noqa: E731
    elif family == "distilbert":
        h = base.embeddings(ids)
        step = lambda i, h: base.transformer.layer[i](h)  # noqa: E731
    elif family.startswith("deberta"):
        mask = torch.ones_like(ids)
        h = base.embeddings(input_ids=ids, mask=mask)
        enc = base.encoder
        assert enc.conv is None
        rel_pos, rel, att = enc.get_rel_pos(h), enc.get_rel_embedding(), enc.get_attention_mask(mask)
        step = lambda i, h: enc.layer[i](h, att, relative_pos=rel_pos, rel_embeddings=rel)[0]  # noqa: E731
    elif family == "modernbert":
        h = base.embeddings(input_ids=ids)
        n = ids.shape[1]
        pos = torch.arange(n)[None]
        dist = (pos[0][:, None] - pos[0][None, :]).abs()
        window = model.config.local_attention // 2
        blocked = torch.finfo(h.dtype).min
        masks = {"full_attention": torch.zeros(1, 1, n, n),
                 "sliding_attention": torch.where(dist <= window, 0.0, blocked)[None, None]}
        rope = {kind: base.rotary_emb(h, pos, kind) for kind in masks}

        def step(i, h):
            layer = base.layers[i]
            kind = layer.attention_type  # the kind of the *base* layer i
            return layer(h, attention_mask=masks[kind], position_embeddings=rope[kind])
    else:
        raise AssertionError(family)
    states = [h]
    for src in sources:
        h = step(src, h)
        states.append(h)
    return states


def reference_head(family, model, h):
    """The full MLM head, written out from each ``*ForMaskedLM.forward`` in Transformers."""
    if family == "bert":
        return model.cls(h)
    if family in ("roberta", "xlm-roberta"):
        return model.lm_head(h)
    if family == "albert":
        return model.predictions(h)
    if family == "distilbert":
        return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if family == "electra":
        return model.generator_lm_head(model.generator_predictions(h))
    if family == "deberta-v2":
        return model.cls(h)
    if family == "deberta-v2-lmhead":
        return model.lm_predictions(h, model.deberta.embeddings.word_embeddings)
    if family == "modernbert":
        return model.decoder(model.head(model.model.final_norm(h)))
    raise AssertionError(family)


# --- every family --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_map_reproduces_the_base_exactly(tiny, family, tmp_path):
    base_dir = tiny(family)
    depth = adapter_for_dir(base_dir).depth(json.loads((base_dir / "config.json").read_text()))
    layermap.build_variant(base_dir, tmp_path / "id", list(range(depth)))
    ids, mask, _ = encode(base_dir, SENTENCES)  # padded: the masks take part too
    with torch.no_grad():
        a = load(base_dir)(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        b = load(tmp_path / "id")(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert len(a.hidden_states) == depth + 1
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a.logits, b.logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_duplicated_layer_equals_applying_its_source_twice(tiny, family, tmp_path):
    base_dir = tiny(family)
    sources = [0, 1, 1, 2, 2]  # for ModernBERT, kinds full, sliding, sliding, full, full: no index rule gives that
    layermap.build_variant(base_dir, tmp_path / "dup", sources)
    base, var = load(base_dir), load(tmp_path / "dup")
    ids, _, _ = encode(base_dir, [LONG])
    with torch.no_grad():
        expected = by_hand(family, base, ids, sources)
        got = var(input_ids=ids, output_hidden_states=True)
        assert len(got.hidden_states) == len(sources) + 1
        if family == "modernbert":  # Transformers hands back the last state after the final norm
            expected = expected[:-1] + [base.model.final_norm(expected[-1])]
            torch.testing.assert_close(got.logits, base.decoder(base.head(expected[-1])), rtol=0, atol=1e-5)
        else:
            torch.testing.assert_close(got.logits, reference_head(family, base, expected[-1]), rtol=0, atol=1e-5)
        for e, g in zip(expected, got.hidden_states, strict=True):
            torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_probe_last_layer_equals_the_models_own_mlm_argmax(tiny, family):
    base_dir = tiny(family)
    model, adapter = forward.load_mlm(base_dir)
    ids, mask, special = encode(base_dir, SENTENCES)
    keep = (mask == 1) & (special == 0)
    with torch.no_grad():
        own = model(input_ids=ids, attention_mask=mask).logits
        hidden = adapter.hidden_states(model, ids, mask)
        ours = adapter.mlm_logits(model, hidden[-1])
    assert len(hidden) == model.config.to_dict()[adapter.depth_key] + 1
    assert torch.equal(own.argmax(-1)[keep], ours.argmax(-1)[keep])
    torch.testing.assert_close(ours[keep], own[keep], rtol=0, atol=1e-5)
    # and through the whole probe: its last-layer top-1 is the model's own argmax hitting the input token
    table = probe.run_probe(base_dir, SENTENCES, bootstrap=0, device="cpu")
    assert set(table["reading"]) == {"head", "embeddings"} and set(table["head"]) == {"pretrained", "none"}
    table = table[table["reading"] == "head"]
    target = ids[keep]
    assert table["n_tokens"].iloc[0] == target.numel()
    assert table["top1"].iloc[-1] == pytest.approx((own.argmax(-1)[keep] == target).double().mean().item(), abs=1e-12)
    assert table["agree_last"].iloc[-1] == 1.0


@pytest.mark.parametrize("family", FAMILIES)
def test_variant_reloads_cleanly_with_its_decoder_tied(tiny, family, tmp_path):
    base_dir = tiny(family)
    sources = [0, 1, 1, 2, 2]
    layermap.build_variant(base_dir, tmp_path / "v", sources)
    model, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "v"), output_loading_info=True)
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    depth_key = adapter_for(model.config.model_type).depth_key
    assert AutoConfig.from_pretrained(str(tmp_path / "v")).to_dict()[depth_key] == 5

    def tied(m):
        if family == "deberta-v2-lmhead":  # this head multiplies by the word embeddings: tied by construction
            return True
        return m.get_output_embeddings().weight.data_ptr() == m.get_input_embeddings().weight.data_ptr()

    assert tied(model)
    model.save_pretrained(str(tmp_path / "again"))
    again, info2 = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "again"), output_loading_info=True)
    assert info2["missing_keys"] == set() and info2["unexpected_keys"] == set() and tied(again)

    # the checkpoint: every non-layer tensor carried over unchanged, layer tensors copied from their source
    adapter = adapter_for_dir(base_dir)
    with safe_open(str(base_dir / "model.safetensors"), "pt") as g, \
            safe_open(str(tmp_path / "v" / "model.safetensors"), "pt") as f:
        base_keys, keys = set(g.keys()), set(f.keys())
        for k in base_keys:
            if adapter.layer_of(k) is None or family == "albert":
                assert k in keys and torch.equal(f.get_tensor(k), g.get_tensor(k))
        if family != "albert":
            for new, src in enumerate(sources):
                src_keys = [k for k in base_keys if adapter.layer_of(k) == src]
                assert src_keys
                for k in src_keys:
                    assert torch.equal(f.get_tensor(adapter.renumber_key(k, new)), g.get_tensor(k))
            assert len(keys) == len(base_keys) + 2 * len(src_keys)


def test_unsupported_architecture_lists_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    expected = ["albert", "bert", "deberta-v2", "distilbert", "electra", "modernbert", "roberta", "xlm-roberta"]
    assert supported_model_types() == expected
    with pytest.raises(InputError, match="unsupported architecture model_type='gpt2'; supported: "
                                         + ", ".join(expected)):
        adapter_for_dir(tmp_path)
    with pytest.raises(InputError, match="supported: albert, bert"):
        layermap.build_variant(tmp_path, tmp_path / "v", [0])


# --- ALBERT: shared layers -----------------------------------------------------------------------------


def test_albert_layer_map_is_a_change_of_depth_over_shared_layers(tiny, tmp_path):
    base_dir = tiny("albert")
    prov = layermap.build_variant(base_dir, tmp_path / "v", [0, 1, 1, 2])
    assert "depth change over shared layers" in prov["note"] and prov["shared_layers"] is True
    saved = json.loads((tmp_path / "v" / "layer_map.json").read_text())
    assert "depth change over shared layers" in saved["note"]
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 4 and cfg["num_hidden_groups"] == 1
    with safe_open(str(base_dir / "model.safetensors"), "pt") as g, \
            safe_open(str(tmp_path / "v" / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == set(g.keys())  # nothing copied: the one group serves every position


def test_albert_refuses_maps_it_cannot_express(tiny, tmp_path):
    with pytest.raises(InputError, match="position 1 goes back from layer 2 to layer 1: reordering cannot be"):
        layermap.build_variant(tiny("albert"), tmp_path / "v", [2, 1, 0])
    two = tiny("albert", num_hidden_layers=4, num_hidden_groups=2)
    with pytest.raises(InputError, match="position 2 of the 5-layer variant runs group 0 but its source layer 2 "
                                         "runs group 1"):
        layermap.build_variant(two, tmp_path / "v", [0, 1, 2, 3, 3])
    assert not (tmp_path / "v").exists()


def test_albert_with_two_groups_follows_the_groups(tiny, tmp_path):
    two = tiny("albert", num_hidden_layers=4, num_hidden_groups=2)
    sources = [0, 1, 1, 2, 3]  # positions run groups 0,0,0,1,1 at depth 5, as do their sources at depth 4
    layermap.build_variant(two, tmp_path / "v", sources)
    base, var = load(two), load(tmp_path / "v")
    ids, _, _ = encode(two, [LONG])
    with torch.no_grad():
        expected = by_hand("albert", base, ids, sources)
        got = var(input_ids=ids, output_hidden_states=True).hidden_states
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_albert_inner_groups_give_one_state_per_layer(tiny):
    inner = tiny("albert", inner_group_num=2)
    model, adapter = forward.load_mlm(inner)
    ids, mask, _ = encode(inner, SENTENCES)
    with torch.no_grad():
        states = adapter.hidden_states(model, ids, mask)
        own = model.albert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert len(states) == 4 and torch.equal(states[-1], own)


# --- ModernBERT: attention kind by index, layer 0 without attention norm ---------------------------------


def test_modernbert_copied_layers_keep_their_attention_kind(tiny, tmp_path):
    base_dir = tiny("modernbert")  # global every 2nd layer: full, sliding, full
    sources = [0, 1, 1, 2, 2]
    prov = layermap.build_variant(base_dir, tmp_path / "v", sources)
    kinds = ["full_attention", "sliding_attention", "sliding_attention", "full_attention", "full_attention"]
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    assert cfg["layer_types"] == kinds == prov["layer_types"] and "global_attn_every_n_layers" not in cfg
    var = load(tmp_path / "v")
    window = var.config.local_attention // 2 + 1
    for layer, kind in zip(var.model.layers, kinds, strict=True):
        assert layer.attention_type == kind
        assert layer.attn.sliding_window == (None if kind == "full_attention" else window)

    # the index-based default would give other kinds here (full, sliding, full, sliding, full) and other outputs
    ids, _, _ = encode(base_dir, [LONG])
    assert ids.shape[1] > 2 * window
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    default_cfg = ModernBertConfig(**{k: v for k, v in cfg.items() if k != "layer_types"},
                                   global_attn_every_n_layers=2)
    assert default_cfg.layer_types != kinds
    by_index = ModernBertForMaskedLM(default_cfg).eval()
    by_index.load_state_dict(var.state_dict())
    with torch.no_grad():
        assert not torch.allclose(by_index(input_ids=ids).logits, var(input_ids=ids).logits, atol=1e-4)


@pytest.mark.parametrize("layers", [[1, 1, 2], [0, 0, 1, 2], [0, 2, 0]])
def test_modernbert_refuses_moving_layer_zero(tiny, tmp_path, layers):
    with pytest.raises(InputError, match="layer 0 has no attention norm.*must stay the first layer and appear once"):
        layermap.build_variant(tiny("modernbert"), tmp_path / "v", layers)


# --- DeBERTa: shared relative-position table, the layer-0 convolution ------------------------------------


def test_deberta_relative_position_table_is_shared_not_copied(tiny, tmp_path):
    base_dir = tiny("deberta-v2")
    prov = layermap.build_variant(base_dir, tmp_path / "v", [0, 1, 1, 2, 2, 2])
    assert "rel_embeddings" in prov["shared_tensors"]
    with safe_open(str(base_dir / "model.safetensors"), "pt") as g, \
            safe_open(str(tmp_path / "v" / "model.safetensors"), "pt") as f:
        shared = [k for k in f.keys() if "rel_embeddings" in k or k.startswith("deberta.encoder.LayerNorm")]
        assert sorted(shared) == sorted(k for k in g.keys() if "rel_embeddings" in k
                                        or k.startswith("deberta.encoder.LayerNorm"))
        assert len([k for k in shared if "rel_embeddings" in k]) == 1
        for k in shared:
            assert torch.equal(f.get_tensor(k), g.get_tensor(k))
    var = load(tmp_path / "v")
    assert var.deberta.encoder.rel_embeddings.weight.shape == (16, 32)  # 2 * position_buckets rows, once


def test_deberta_with_a_convolution_keeps_layer_zero_first(tiny, tmp_path):
    conv = tiny("deberta-v2", conv_kernel_size=3)
    layermap.build_variant(conv, tmp_path / "ok", [0, 1, 1, 2])
    _, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "ok"), output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    for bad in ([1, 1, 2], [0, 0, 1]):
        with pytest.raises(InputError, match="convolution .* after layer 0 only"):
            layermap.build_variant(conv, tmp_path / "bad", bad)


# --- ELECTRA: the discriminator has no masked-LM head ----------------------------------------------------


def test_electra_discriminator_needs_a_fitted_head(tiny, tmp_path):
    disc = tiny("electra-discriminator")
    with pytest.raises(InputError, match="no \\(complete\\) masked-LM head.*generator_.*probe: \\{head: fit\\}"):
        forward.load_mlm(disc)
    # its layer maps work like the generator's and keep the discriminator head
    layermap.build_variant(disc, tmp_path / "v", [0, 1, 1, 2])
    with safe_open(str(tmp_path / "v" / "model.safetensors"), "pt") as f:
        assert any(k.startswith("discriminator_predictions.") for k in f.keys())


@pytest.mark.parametrize("family", FAMILIES)
def test_gpu_padding_to_a_multiple_of_8_leaves_the_outputs_unchanged(tiny, family):
    """Fine-tuning on a GPU pads each batch to a multiple of 8 tokens (batches.collator): the extra padding must be
    masked out, so a sequence classifier gives the logits of exact per-batch padding."""
    from layerlens.batches import collator
    from transformers import AutoModelForSequenceClassification

    model_dir = tiny(family)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=3).eval()
    features = [dict(tok(a, b)) for a, b in zip(SENTENCES, SENTENCES[1:] + [LONG])]
    exact, padded = collator(tok, on_gpu=False)(features), collator(tok, on_gpu=True)(features)
    longest = max(len(f["input_ids"]) for f in features)
    assert exact["input_ids"].shape[1] == longest and longest % 8  # the test needs padding to add
    assert padded["input_ids"].shape[1] == -(-longest // 8) * 8
    with torch.no_grad():
        a, b = model(**exact).logits, model(**padded).logits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
