"""A real pretrained masked-LM head: rxnmapper's ALBERT (reaction SMILES), converted by tests/rxn.py.

Skipped where the rxnmapper wheel cannot be had (no PyPI): set LAYERLENS_RXNMAPPER_WHEEL to the wheel, or run
``pip download --no-deps --only-binary=:all: rxnmapper==0.4.3 -d .cache/rxnmapper`` (as .ci/run does)."""

from __future__ import annotations

import collections
import json
import re

import pytest
from rxn import RXNMAPPER_VERSION, RXNMAPPER_WHEEL_SHA256

# rxnmapper 0.4.3, rxnmapper/smiles_utils.py, copied by hand: the reference the tokenizer is checked against
SMI_REGEX_PATTERN = (r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?|\*|\$|"
                     r"\%[0-9]{2}|[0-9])")
# the reactions of rxnmapper's README (the wheel's METADATA): RXNMapper's and BatchedMapper's examples
README_REACTIONS = [
    "CC(C)S.CN(C)C=O.Fc1cccnc1F.O=C([O-])[O-].[K+].[K+]>>CC(C)Sc1ncccc1F",
    "C1COCCO1.CC(C)(C)OC(=O)CONC(=O)NCc1cccc2ccccc12.Cl>>O=C(O)CONC(=O)NCc1cccc2ccccc12",
    "CC[O-]~[Na+].BrCC>>CCOCC",
]
# what the regex drops or the vocabulary lacks: atom maps, CXSMILES, spaces, unknown atoms, [MASK] in the text
EDGE_CASES = [
    "[CH3:1][CH2:2][O-:3]~[Na+].Br[CH2:4][CH3:5]>>[CH3:5][CH2:4][O:3][CH2:2][CH3:1]",
    "CC[O-].[Na+].BrCC>>CCOCC |f:0.1|",
    "AAgCC[O-]~[Na+].BrCC>>C(C)COCC",
    "c1ccccc1Br.[Zz]>>CC[MASK]c1ccccc1 C%12",
]


def load(rxn_albert):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model, info = AutoModelForMaskedLM.from_pretrained(str(rxn_albert), output_loading_info=True)
    return model.eval(), AutoTokenizer.from_pretrained(str(rxn_albert)), info


def test_rxn_albert_loads_with_its_own_tied_head(rxn_albert):
    from transformers import PreTrainedTokenizerFast

    model, tokenizer, info = load(rxn_albert)
    assert {k: sorted(v) for k, v in info.items() if k != "error_msgs"} == {
        "missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    assert not info.get("error_msgs")
    emb, head = model.albert.embeddings.word_embeddings, model.predictions
    assert head.decoder.weight is emb.weight and head.decoder.bias is head.bias  # tied, as in pre-training
    c = model.config
    assert (c.model_type, c.num_hidden_layers, c.num_hidden_groups, c.hidden_size, c.embedding_size, c.vocab_size,
            c.hidden_act) == ("albert", 12, 1, 256, 128, 591, "gelu")
    assert isinstance(tokenizer, PreTrainedTokenizerFast) and len(tokenizer) == c.vocab_size
    # safetensors only, and the record beside the folder names the wheel it came from
    assert sorted(p.name for p in rxn_albert.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")) == []
    record = json.loads(rxn_albert.with_name(rxn_albert.name + ".json").read_text())
    assert (record["wheel_version"], record["wheel_sha256"]) == (RXNMAPPER_VERSION, RXNMAPPER_WHEEL_SHA256)
    assert record["dropped_keys"] == ["albert.pooler.bias", "albert.pooler.weight"]

    # the project's own loader finds the pretrained head (no `head: fit` needed)
    from layerlens.probe import load_mlm

    assert load_mlm(rxn_albert)[1].name == "albert"


def test_rxn_tokenizer_is_rxnmapper_tokenization(rxn_albert):
    """rxnmapper's SmilesTokenizer: re.findall with its regex, each piece looked up whole in vocab.txt
    ([UNK] if absent), [CLS] ... [SEP]; no lower-casing."""
    from transformers import AutoTokenizer

    record = json.loads(rxn_albert.with_name(rxn_albert.name + ".json").read_text())
    assert record["smiles_regex"] == SMI_REGEX_PATTERN  # what the wheel has is what was copied above
    vocab = {t: i for i, t in enumerate((rxn_albert / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    tokenizer = AutoTokenizer.from_pretrained(str(rxn_albert))
    regex = re.compile(SMI_REGEX_PATTERN)

    for smiles in README_REACTIONS + EDGE_CASES:
        pieces = regex.findall(smiles)
        expected = [vocab["[CLS]"]] + [vocab.get(p, vocab["[UNK]"]) for p in pieces] + [vocab["[SEP]"]]
        enc = tokenizer(smiles)
        assert enc["input_ids"] == expected, smiles
        assert enc["token_type_ids"] == [0] * len(expected)
    for smiles in README_REACTIONS:  # real reactions: every character is a token, every token is known
        assert "".join(regex.findall(smiles)) == smiles
        ids = tokenizer(smiles)["input_ids"]
        assert vocab["[UNK]"] not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == smiles
    # the edge cases do hit [UNK] (atom-map numbers, "[Zz]") and the specials are rxnmapper's
    assert vocab["[UNK]"] in tokenizer(EDGE_CASES[0])["input_ids"] and vocab["[UNK]"] in tokenizer(EDGE_CASES[3])[
        "input_ids"]
    assert vocab["[MASK]"] in tokenizer(EDGE_CASES[3])["input_ids"]
    assert {k: getattr(tokenizer, f"{k}_id") for k in ("pad_token", "unk_token", "cls_token", "sep_token",
                                                      "mask_token")} == {
        "pad_token": 0, "unk_token": vocab["[UNK]"], "cls_token": vocab["[CLS]"], "sep_token": vocab["[SEP]"],
        "mask_token": vocab["[MASK]"]}
    pair = tokenizer("CCO", "OCC")
    assert pair["input_ids"] == [vocab[t] for t in ("[CLS]", "C", "C", "O", "[SEP]", "O", "C", "C", "[SEP]")]
    assert pair["token_type_ids"] == [0] * 5 + [1] * 4


def test_rxn_albert_head_predicts_masked_tokens_at_last_layer(rxn_albert):
    """Mechanics: the real head works through the conversion. Every token of the README's reactions masked in
    turn (one per sequence); the last layer's logits must name it far above chance and the majority token."""
    import torch

    model, tokenizer, _ = load(rxn_albert)
    sequences, targets, positions = [], [], []
    for smiles in README_REACTIONS:
        ids = tokenizer(smiles)["input_ids"]
        for i in range(1, len(ids) - 1):
            masked = list(ids)
            masked[i] = tokenizer.mask_token_id
            sequences.append(masked)
            targets.append(ids[i])
            positions.append(i)
    batch = tokenizer.pad({"input_ids": sequences}, return_tensors="pt")
    rows, positions, targets = torch.arange(len(sequences)), torch.tensor(positions), torch.tensor(targets)
    with torch.inference_mode():
        out = model(**batch, output_hidden_states=True)
        logits = out.logits[rows, positions]
        per_layer = [round((model.predictions(h[rows, positions]).argmax(-1) == targets).float().mean().item(), 3)
                     for h in out.hidden_states]
        from_last = model.predictions(out.hidden_states[-1])
    top1 = (logits.argmax(-1) == targets).float().mean().item()
    majority = collections.Counter(targets.tolist()).most_common(1)[0][1] / len(targets)
    print(f"rxnmapper ALBERT, {len(targets)} masked tokens: last-layer top-1 {top1:.3f} (majority token "
          f"{majority:.3f}, uniform {1 / model.config.vocab_size:.4f}); top-1 by layer 0..12: {per_layer}")
    assert len(targets) == 149
    assert top1 >= 0.85 and top1 > majority + 0.5
    # hidden_states: the mapped embeddings (layer 0, already hidden_size wide) then the 12 layer outputs, the
    # last being what the head sees in the model's own forward pass
    assert len(out.hidden_states) == 13 and out.hidden_states[0].shape[-1] == model.config.hidden_size
    assert torch.allclose(from_last, out.logits)
    assert per_layer[-1] == round(top1, 3)


def test_rxn_albert_unavailable_says_how(tmp_path, monkeypatch):
    """Without the wheel the fixture skips with a reason that says where to get it (no network used here)."""
    import pytest
    from rxn import WHEEL_ENV, RxnUnavailable, build_rxn_albert

    monkeypatch.setenv(WHEEL_ENV, str(tmp_path))
    with pytest.raises(RxnUnavailable, match=r"no rxnmapper-0\.4\.3-py3-none-any\.whl there.*pip download"):
        build_rxn_albert(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_both_probe_modes_with_its_own_head(rxn_albert):
    """Mechanics of the probe on a head pre-trained with its layers (the README's measurement, on the reactions
    quoted in the wheel): in both modes the last layer's top-1 is the model's own masked-LM prediction (one pass
    at a time through AutoModelForMaskedLM), and the identity reading maps ALBERT's narrower word embeddings up
    as the encoder does (computed here by hand)."""
    import numpy as np
    import torch
    from layerlens import masking, probe
    from rxn import wheel_reactions

    reactions = wheel_reactions(rxn_albert.parent)  # the fixture's cache folder holds the wheel
    assert len(reactions) >= 10 and set(README_REACTIONS[:2]) <= set(reactions)
    spec = masking.Masking(scheme="each", max_positions=512)
    table = probe.run_probe(rxn_albert, reactions, modes=["input", "masked"], masking=spec, max_length=512,
                            bootstrap=0, device="cpu")
    assert set(table["head"]) == {"pretrained", "none"} and len(table) == 2 * 2 * 13
    model, tokenizer, _ = load(rxn_albert)
    mapped = model.albert.encoder.embedding_hidden_mapping_in(model.albert.embeddings.word_embeddings.weight)
    hits = {"input": [], "masked": []}
    identity0 = []
    with torch.no_grad():
        for i, smiles in enumerate(reactions):
            enc = tokenizer(smiles, return_special_tokens_mask=True)
            ids = enc["input_ids"]
            cand = [q for q, s in enumerate(enc["special_tokens_mask"]) if not s and ids[q] != tokenizer.unk_token_id]
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            target = torch.tensor([ids[q] for q in cand])
            hits["input"] += (out.logits[0, cand].argmax(-1) == target).tolist()
            identity0 += ((out.hidden_states[0][0, cand] @ mapped.T).argmax(-1) == target).tolist()
            for p in masking.patterns(i, ids, cand, spec, tokenizer.mask_token_id, len(tokenizer)):
                logits = model(input_ids=torch.tensor([p.input_ids])).logits[0, p.scored]
                hits["masked"] += (logits.argmax(-1) == torch.tensor([ids[q] for q in p.scored])).tolist()
    for mode, h in hits.items():
        rows = table[(table["mode"] == mode) & (table["reading"] == "head")]
        assert rows["n_tokens"].iloc[0] == len(h) == len(identity0)
        assert rows["top1"].iloc[-1] == pytest.approx(np.mean(h), abs=1e-12)
    ident = table[(table["mode"] == "input") & (table["reading"] == "embeddings")]
    assert ident["top1"].iloc[0] == pytest.approx(np.mean(identity0), abs=1e-12)
