"""The layer probe: every hidden layer through the model's own masked-LM head.

Kao et al.'s first phenomenon: feed each hidden layer (layer 0 = the embedding output, then 1..L) straight into
the MLM output head, which in pre-training only saw the last layer, and it still reconstructs the input tokens.

One forward pass gives every hidden state (:mod:`layerlens.forward`). Each layer's states at the input tokens
(special tokens and padding excluded; nothing is masked) go through the full head in chunks of ``chunk_tokens``
positions, so only one chunk of vocabulary-sized logits exists at a time, whatever the depth. Per layer:

``top1``
    share of tokens whose argmax prediction is the input token (with a 95% bootstrap interval over examples,
    ``top1_lo`` / ``top1_hi``: the sentences of one example are resampled together)
``top5``
    share of tokens whose input token is among the 5 highest logits
``cross_entropy``
    mean negative log-probability of the input token (nats)
``agree_last``
    share of tokens whose argmax equals the last layer's argmax
``kl_last``
    mean KL(last layer's distribution || this layer's), nats

``n_tokens`` tokens are scored: the sentences' own, special tokens excluded, and ``[UNK]`` tokens excluded too
(no head can give back text its vocabulary lacks; ``n_unk_excluded`` counts them).

``source_layer`` gives, in the same numbering as ``layer``, the base model's hidden state the layer copies
(``layers[i-1] + 1`` for a variant's layer i; 0 for the embedding output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .families import FamilyAdapter, adapter_for_dir
from .forward import Chunk, Encoded, default_device, load_mlm
from .io import atomic_path
from .layermap import config_layers, source_layers
from .manifest import verify
from .sentences import read_sentences
from .similarity import Similarity, write_similarity
from .stats import bootstrap_ratio_ci

COLUMNS = ["model", "layer", "source_layer", "top1", "top1_lo", "top1_hi", "top5", "cross_entropy",
           "agree_last", "kl_last", "n_tokens", "n_unk_excluded", "n_sentences", "head"]


def run_probe(model_dir: str | Path, sentences: Sequence[str], *, model_name: str = "", max_length: int = 128,
              batch_size: int = 32, chunk_tokens: int = 2048, bootstrap: int = 1000, seed: int = 0,
              examples: Sequence[Hashable] | None = None, layers: Sequence[int] | None = None,
              device: str | None = None, head_dir: str | Path | None = None, model=None,
              also: Sequence = ()) -> pd.DataFrame:
    """Probe every layer of the model in ``model_dir`` on ``sentences``; one row per layer.

    The head is the checkpoint's own (``head`` column: ``pretrained``) or, with ``head_dir``, a fitted one
    (``fit``). ``examples`` names the example each sentence comes from, e.g. (task, idx): the bootstrap
    resamples examples (default: each sentence is its own). With ``layers``, the probed model is the variant
    of ``model_dir`` under that layer map, built in memory. ``model``: the model to probe, already loaded (by
    :func:`layerlens.forward.load_mlm`). ``also``: more consumers of the same forward pass, each given every
    chunk (``add(chunk)``), e.g. :class:`layerlens.similarity.Similarity`."""
    import torch
    from transformers import AutoTokenizer

    device = device or default_device()
    head_name = "pretrained" if head_dir is None else "fit"
    if model is None:
        model, adapter = load_mlm(model_dir, device, head_dir=head_dir, layers=layers)
    else:
        adapter = adapter_for_dir(model_dir)
    encoded = Encoded(AutoTokenizer.from_pretrained(str(model_dir)), sentences, max_length)
    acc = None  # per-layer accumulators, created once the depth is known
    with torch.inference_mode():
        for chunk in encoded.chunks([(model, adapter)], batch_size=batch_size, chunk_tokens=chunk_tokens,
                                    device=device, desc=f"probe {model_name}"):
            if acc is None:
                acc = _Accumulators(len(chunk.states[0]), len(sentences))
            _score_chunk(model, adapter, chunk, acc)
            for consumer in also:
                consumer.add(chunk)
    if acc is None:
        raise InputError(model_dir, "nothing to probe: no sentences, or none with a token besides special ones "
                                    "and [UNK]")
    return acc.table(model_name=model_name, sources=_source_layers(model_dir, layers, len(acc.ce)),
                     bootstrap=bootstrap, seed=seed, clusters=examples, head_name=head_name,
                     n_unk=encoded.n_unk_excluded)


def _score_chunk(model, adapter: FamilyAdapter, chunk: Chunk, acc: _Accumulators) -> None:
    """Score the chunk's tokens at every layer, one layer's logits at a time."""
    import torch

    def logp_of(layer):
        return torch.log_softmax(adapter.mlm_logits(model, chunk.hidden(layer)).float(), dim=-1)

    n_layers = len(chunk.states[0])
    target = chunk.target
    last_logp = logp_of(n_layers - 1)
    last_top1 = last_logp.argmax(-1)
    last_p = last_logp.exp()
    for layer in range(n_layers):
        logp = last_logp if layer == n_layers - 1 else logp_of(layer)
        top5 = logp.topk(5, dim=-1).indices
        top1 = top5[:, 0]
        acc.add(layer,
                correct1=(top1 == target),
                correct5=(top5 == target[:, None]).any(-1),
                nll=-logp.gather(-1, target[:, None]).squeeze(-1),
                agree=(top1 == last_top1),
                kl=(last_p * (last_logp - logp)).sum(-1),
                sent=chunk.sentence)


class _Accumulators:
    def __init__(self, n_layers: int, n_sent: int):
        self.top1 = np.zeros((n_layers, n_sent), dtype=np.int64)
        self.tokens = np.zeros(n_sent, dtype=np.int64)
        self.top5 = np.zeros(n_layers, dtype=np.int64)
        self.ce = np.zeros(n_layers, dtype=np.float64)
        self.agree = np.zeros(n_layers, dtype=np.int64)
        self.kl = np.zeros(n_layers, dtype=np.float64)

    def add(self, layer, *, correct1, correct5, nll, agree, kl, sent: np.ndarray):
        np.add.at(self.top1[layer], sent, correct1.cpu().numpy().astype(np.int64))
        if layer == 0:
            np.add.at(self.tokens, sent, 1)
        self.top5[layer] += int(correct5.sum())
        self.ce[layer] += float(nll.double().sum())
        self.agree[layer] += int(agree.sum())
        self.kl[layer] += float(kl.double().sum())

    def table(self, *, model_name, sources, bootstrap, seed, clusters, head_name, n_unk) -> pd.DataFrame:
        n_tok = int(self.tokens.sum())
        if n_tok == 0:
            raise ValueError("the probe sentences hold no scoreable tokens")
        top1 = self.top1.sum(1) / n_tok
        lo, hi = bootstrap_ratio_ci(self.top1, self.tokens, bootstrap, seed, clusters=clusters)
        rows = []
        for layer in range(len(self.ce)):
            rows.append({
                "model": model_name, "layer": layer, "source_layer": sources[layer],
                "top1": top1[layer], "top1_lo": lo[layer], "top1_hi": hi[layer],
                "top5": self.top5[layer] / n_tok, "cross_entropy": self.ce[layer] / n_tok,
                "agree_last": self.agree[layer] / n_tok, "kl_last": self.kl[layer] / n_tok,
                "n_tokens": n_tok, "n_unk_excluded": n_unk, "n_sentences": int((self.tokens > 0).sum()),
                "head": head_name,
            })
        return pd.DataFrame(rows, columns=COLUMNS)


def _source_layers(model_dir, layers: Sequence[int] | None, n_hidden: int) -> list[int]:
    layers = source_layers(model_dir) if layers is None else layers
    if layers is None:
        return list(range(n_hidden))
    return [0] + [s + 1 for s in layers]


def probe_to_file(model_dir, sentences_tsv, out_csv, *, model_name: str, settings: dict, seed: int = 0,
                  variant: dict | None = None, base_name: str = "", head_dir: str | Path | None = None,
                  similarity_csv: str | Path | None = None, cka: bool = True) -> pd.DataFrame:
    """The probe rule: verify the model (and fitted head) folders, probe, write the CSV. ``seed`` seeds the
    bootstrap (``statistics.seed``), which resamples the examples of the sentence table (task, idx).

    With ``variant`` (a probe-only variant's config entry), ``model_dir`` is its base and the variant is built
    in memory from it; nothing is written but the CSV. With ``head_dir``, every layer goes through that fitted
    head instead of the model's own. With ``similarity_csv``, the same forward pass also measures the layer
    similarity (:mod:`layerlens.similarity`; ``cka``: with the CKA matrix) and writes it there.
    """
    verify(model_dir)
    if head_dir is not None:
        verify(head_dir)
    sentences = read_sentences(sentences_tsv)
    layers = None if variant is None else config_layers(model_dir, variant, base_name=base_name,
                                                        variant_name=model_name)
    examples = list(zip(sentences["task"], sentences["idx"]))
    similarity = Similarity(len(sentences), cka=cka) if similarity_csv is not None else None
    table = run_probe(model_dir, sentences["sentence"].tolist(), layers=layers, examples=examples,
                      model_name=model_name, max_length=settings["max_length"], batch_size=settings["batch_size"],
                      chunk_tokens=settings["chunk_tokens"], bootstrap=settings["bootstrap"], seed=seed,
                      head_dir=head_dir, also=() if similarity is None else [similarity])
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    if similarity is not None:
        write_similarity(similarity.table(model_name, bootstrap=settings["bootstrap"], seed=seed,
                                          clusters=examples), similarity_csv)
    return table
