"""The shared forward loop against the model's own forward and a plain per-sentence tokenization."""

import random

import pytest
import torch
from helpers import sentence
from layerlens import forward
from layerlens.errors import InputError
from transformers import AutoTokenizer

SENTENCES = [sentence(random.Random(i)) for i in range(23)] + ["A dog .", "the the the"]


def test_last_layer_equals_the_models_own_mlm_argmax(tiny_bert):
    """The probe's last-layer predictions are exactly AutoModelForMaskedLM's argmax on the same tokens."""
    model, adapter = forward.load_mlm(tiny_bert)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    batch = tok(SENTENCES, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    keep = (batch["attention_mask"] == 1) & (batch.pop("special_tokens_mask") == 0)
    with torch.no_grad():
        own = model(**batch).logits.argmax(-1)[keep]
        hidden = adapter.hidden_states(model, batch["input_ids"], batch["attention_mask"])
        ours = adapter.mlm_logits(model, hidden[-1][keep]).argmax(-1)
    assert torch.equal(own, ours)


def test_checkpoint_without_mlm_head_gets_a_clear_error(tiny_bert, tmp_path):
    from transformers import AutoModel

    AutoModel.from_pretrained(str(tiny_bert)).save_pretrained(str(tmp_path / "enc"))
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(tmp_path / "enc"))
    with pytest.raises(InputError, match="no \\(complete\\) masked-LM head.*probe: \\{head: fit\\}"):
        forward.load_mlm(tmp_path / "enc")


@pytest.mark.parametrize("batch_size, chunk", [(32, 4096), (4, 7), (1, 1)])
def test_chunks_hand_out_every_input_token_once(tiny_bert, batch_size, chunk):
    """Whatever the batch and chunk sizes, the chunks hold each sentence's own tokens (no specials, no padding),
    once, with the hidden states of that sentence run alone."""
    model, adapter = forward.load_mlm(tiny_bert)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    expected = {}
    with torch.inference_mode():
        for i, s in enumerate(SENTENCES):
            enc = tok(s, return_tensors="pt")
            last = adapter.hidden_states(model, enc["input_ids"], enc["attention_mask"])[-1][0, 1:-1]
            expected[i] = (enc["input_ids"][0, 1:-1].tolist(), last)
    got = {i: ([], []) for i in range(len(SENTENCES))}
    encoded = forward.Encoded(tok, SENTENCES, max_length=128)
    with torch.inference_mode():
        for c in encoded.chunks([(model, adapter)], batch_size=batch_size, chunk_tokens=chunk, device="cpu"):
            assert len(c.target) <= chunk and len(c.states[0]) == 4
            for i, t, h in zip(c.sentence, c.target.tolist(), c.hidden(-1)):
                got[i][0].append(t)
                got[i][1].append(h)
    for i, (ids, last) in expected.items():
        assert got[i][0] == ids
        torch.testing.assert_close(torch.stack(got[i][1]), last, rtol=1e-5, atol=1e-5)
