"""Output change: how far a variant's final masked-LM outputs move from its base's (v1's claim: removing or
duplicating most layers barely changes them).

Both models read the same input tokens (special tokens, padding and ``[UNK]`` excluded, nothing masked; the
``[UNK]`` tokens are counted in ``n_unk_excluded``) through one forward loop (:mod:`layerlens.forward`); only
each model's last layer goes through its head. Per variant:

``kl``
    mean KL(base || variant) per token (nats)
``agree_top1``
    share of tokens where both predict the same token, with a 95% bootstrap interval over examples
    (``agree_lo`` / ``agree_hi``: the sentences of one example are resampled together)
``top1_base`` / ``top1_variant``
    how often each model gives back the input token from its last layer

``kind``, ``touched`` and ``first_touched`` say what the layer map does (:func:`layerlens.layermap.describe`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from .families import model_depth
from .forward import Encoded, default_device, load_mlm
from .io import atomic_path
from .layermap import config_layers, describe, format_layers, source_layers
from .manifest import verify
from .modelfiles import load_state_dict
from .sentences import read_sentences
from .stats import bootstrap_ratio_ci

CHANGE_COLUMNS = ["variant", "base", "layers", "kind", "touched", "first_touched", "kl", "agree_top1",
                  "agree_lo", "agree_hi", "top1_base", "top1_variant", "n_tokens", "n_unk_excluded", "n_sentences"]


def output_change(base_dir, variant_dir, sentences: Sequence[str], *, layers: Sequence[int] | None = None,
                  variant_name: str = "", base_name: str = "", max_length: int = 128, batch_size: int = 32,
                  chunk_tokens: int = 2048, bootstrap: int = 1000, seed: int = 0,
                  examples: Sequence[Hashable] | None = None, device: str | None = None,
                  head_dir: str | Path | None = None) -> pd.DataFrame:
    """How much a variant's final MLM distribution differs from its base's, on the same input tokens; one row.

    The variant is the saved folder ``variant_dir`` or, with ``variant_dir`` None, the variant of ``base_dir``
    under ``layers``, built in memory from the same read of the base's tensors as the base. With ``head_dir``
    (a base published without an MLM head), both models read their last layer through that fitted head.
    ``examples`` as for :func:`layerlens.probe.run_probe`.
    """
    import torch
    from transformers import AutoTokenizer

    device = device or default_device()
    if variant_dir is None:
        if layers is None:
            raise ValueError("give the variant's folder or its layer map")
        state = load_state_dict(base_dir)  # one read for both models
        base, base_adapter = load_mlm(base_dir, device, head_dir=head_dir, state=state)
        var, var_adapter = load_mlm(base_dir, device, head_dir=head_dir, layers=layers, state=state)
        del state
    else:
        base, base_adapter = load_mlm(base_dir, device, head_dir=head_dir)
        var, var_adapter = load_mlm(variant_dir, device, head_dir=head_dir)
        layers = source_layers(variant_dir)
    encoded = Encoded(AutoTokenizer.from_pretrained(str(base_dir)), sentences, max_length)
    n_sent = len(sentences)
    agree = np.zeros((1, n_sent), dtype=np.int64)
    tokens = np.zeros(n_sent, dtype=np.int64)
    kl_sum, hit_base, hit_var = 0.0, 0, 0
    with torch.inference_mode():
        for chunk in encoded.chunks([(base, base_adapter), (var, var_adapter)], batch_size=batch_size,
                                    chunk_tokens=chunk_tokens, device=device, last_only=True):
            lb = torch.log_softmax(base_adapter.mlm_logits(base, chunk.hidden(-1, 0)).float(), -1)
            lv = torch.log_softmax(var_adapter.mlm_logits(var, chunk.hidden(-1, 1)).float(), -1)
            tb, tv = lb.argmax(-1), lv.argmax(-1)
            kl_sum += float((lb.exp() * (lb - lv)).sum(-1).double().sum())
            np.add.at(agree[0], chunk.sentence, (tb == tv).cpu().numpy().astype(np.int64))
            np.add.at(tokens, chunk.sentence, 1)
            hit_base += int((tb == chunk.target).sum())
            hit_var += int((tv == chunk.target).sum())
    n_tok = int(tokens.sum())
    lo_ci, hi_ci = bootstrap_ratio_ci(agree, tokens, bootstrap, seed, clusters=examples)
    what = describe(layers, model_depth(base_dir)) if layers is not None else {"kind": "identity", "touched": [],
                                                                                "first": None}
    row = {"variant": variant_name, "base": base_name, "layers": format_layers(layers or []),
           "kind": what["kind"], "touched": format_layers(what["touched"]), "first_touched": what["first"],
           "kl": kl_sum / n_tok, "agree_top1": agree.sum() / n_tok, "agree_lo": lo_ci[0], "agree_hi": hi_ci[0],
           "top1_base": hit_base / n_tok, "top1_variant": hit_var / n_tok, "n_tokens": n_tok,
           "n_unk_excluded": encoded.n_unk_excluded, "n_sentences": int((tokens > 0).sum())}
    return pd.DataFrame([row], columns=CHANGE_COLUMNS)


def output_change_to_file(base_dir, variant_dir, sentences_tsv, out_csv, *, variant_name: str, base_name: str,
                          settings: dict, seed: int = 0, variant: dict | None = None,
                          head_dir: str | Path | None = None) -> pd.DataFrame:
    """The output_change rule; ``variant_dir`` is None for a probe-only variant (built in memory from its config
    entry ``variant``). ``seed`` seeds the bootstrap over the sentence table's examples (task, idx)."""
    verify(base_dir)
    for folder in (variant_dir, head_dir):
        if folder is not None:
            verify(folder)
    sentences = read_sentences(sentences_tsv)
    layers = None if variant_dir is not None else config_layers(base_dir, variant, base_name=base_name,
                                                                variant_name=variant_name)
    table = output_change(base_dir, variant_dir, sentences["sentence"].tolist(), layers=layers,
                          examples=list(zip(sentences["task"], sentences["idx"])), variant_name=variant_name,
                          base_name=base_name, max_length=settings["max_length"],
                          batch_size=settings["batch_size"], chunk_tokens=settings["chunk_tokens"],
                          bootstrap=settings["bootstrap"], seed=seed, head_dir=head_dir)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
