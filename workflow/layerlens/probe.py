"""The layer probe: every hidden layer through the model's own masked-LM head.

Kao et al.'s first phenomenon: feed each hidden layer (layer 0 = the embedding output, then 1..L) straight into
the MLM output head, which in pre-training only saw the last layer, and it still reconstructs the input tokens.

One forward pass gives every hidden state. Each layer's states at the input tokens (special tokens and
padding excluded; nothing is masked) go through the full head in chunks of ``chunk_tokens`` positions, so only
one chunk of vocabulary-sized logits exists at a time, whatever the depth. Per layer:

``top1``
    share of tokens whose argmax prediction is the input token (with a 95% bootstrap interval over
    sentences, ``top1_lo`` / ``top1_hi``)
``top5``
    share of tokens whose input token is among the 5 highest logits
``cross_entropy``
    mean negative log-probability of the input token (nats)
``agree_last``
    share of tokens whose argmax equals the last layer's argmax
``kl_last``
    mean KL(last layer's distribution || this layer's), nats

``source_layer`` gives, in the same numbering as ``layer``, the base model's hidden state the layer copies
(``layers[i-1] + 1`` for a variant's layer i; 0 for the embedding output).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .families import adapter_for_dir
from .layermap import format_layers, source_layers

COLUMNS = ["model", "layer", "source_layer", "top1", "top1_lo", "top1_hi", "top5", "cross_entropy",
           "agree_last", "kl_last", "n_tokens", "n_sentences", "head"]


# --- sentences -------------------------------------------------------------------------------------------


def select_sentences(glue_dirs: dict[str, str | Path], n: int) -> pd.DataFrame:
    """The probe's sentences: the first ``n`` of the tasks' dev sets, deterministic.

    Each text column of a dev example is one sentence; tasks take turns (round robin, in the given order) so
    every configured task contributes; exact repeats are dropped. Returns columns task, idx, column, sentence.
    """
    from datasets import load_from_disk

    from .tasks import get_task

    streams = []
    for task, folder in glue_dirs.items():
        spec = get_task(task)
        dev = load_from_disk(str(folder))[spec.dev_splits[0]]
        rows = [(task, int(ex["idx"]), col, ex[col]) for ex in dev for col in spec.text_columns]
        streams.append(iter(rows))
    chosen, seen = [], set()
    while streams and len(chosen) < n:
        for stream in list(streams):
            row = next(stream, None)
            if row is None:
                streams.remove(stream)
                continue
            text = row[3].strip()
            if text and text not in seen:
                seen.add(text)
                chosen.append(row)
                if len(chosen) == n:
                    break
    return pd.DataFrame(chosen, columns=["task", "idx", "column", "sentence"])


def write_sentences(glue_dirs: dict[str, str | Path], n: int, out: str | Path) -> pd.DataFrame:
    from .io import atomic_path

    table = select_sentences(glue_dirs, n)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def read_sentences(path: str | Path) -> list[str]:
    import csv

    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)["sentence"].tolist()


# --- probe -----------------------------------------------------------------------------------------------


def load_mlm(model_dir: str | Path, device: str = "cpu", head_dir: str | Path | None = None):
    """The model with its pretrained masked-LM head, or with the head fitted in ``head_dir``
    (:mod:`layerlens.head`); a clear error if there is neither."""
    from transformers import AutoModelForMaskedLM

    model, info = AutoModelForMaskedLM.from_pretrained(str(model_dir), output_loading_info=True)
    adapter = adapter_for_dir(model_dir)
    if head_dir is not None:
        from .head import apply_head

        apply_head(model, adapter, head_dir)
        return model.eval().to(device), adapter
    missing_head = sorted(k for k in info["missing_keys"] if adapter.is_head_key(k))
    if missing_head:
        raise InputError(
            model_dir,
            f"the checkpoint has no (complete) masked-LM head: missing {', '.join(missing_head[:4])}"
            + (" ..." if len(missing_head) > 4 else "")
            + ". Sentence encoders, fine-tuned encoders and ELECTRA discriminators ship none; set "
              "`probe: {head: fit}` for this model to fit one on the last layer.",
        )
    return model.eval().to(device), adapter


def run_probe(model_dir: str | Path, sentences: Sequence[str], *, model_name: str = "", max_length: int = 128,
              batch_size: int = 32, chunk_tokens: int = 2048, bootstrap: int = 1000, seed: int = 0,
              device: str | None = None, head_dir: str | Path | None = None, model=None) -> pd.DataFrame:
    """Probe every layer of the model in ``model_dir`` on ``sentences``; one row per layer.

    The head is the checkpoint's own (``head`` column: ``pretrained``) or, with ``head_dir``, a fitted one
    (``fit``)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    head_name = "pretrained" if head_dir is None else "fit"
    if model is None:
        model, adapter = load_mlm(model_dir, device, head_dir=head_dir)
    else:
        adapter = adapter_for_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    lengths = np.array([len(x) for x in enc["input_ids"]])
    order = np.argsort(-lengths, kind="stable")  # similar lengths share a batch: little padding

    n_sent = len(sentences)
    acc = None  # per-layer accumulators, created once the depth is known
    with torch.inference_mode():
        for start in tqdm(range(0, n_sent, batch_size), desc=f"probe {model_name}", mininterval=5):
            ids_idx = order[start:start + batch_size]
            batch = tokenizer.pad({k: [enc[k][i] for i in ids_idx] for k in
                                   ("input_ids", "attention_mask", "special_tokens_mask")}, return_tensors="pt")
            input_ids = batch["input_ids"].to(device)
            attention = batch["attention_mask"].to(device)
            keep = (attention.bool() & ~batch["special_tokens_mask"].to(device).bool())
            hidden = adapter.hidden_states(model, input_ids, attention)
            if acc is None:
                acc = _Accumulators(len(hidden), n_sent)
            sent_of_token = torch.as_tensor(ids_idx, device=device)[:, None].expand_as(input_ids)[keep]
            target = input_ids[keep]
            # one layer's kept tokens at a time: memory above the forward pass's own states is flat in depth
            flat = keep.reshape(-1).nonzero().squeeze(1)
            states = [h.reshape(-1, h.shape[-1]) for h in hidden]  # views, no copies
            for lo in range(0, target.numel(), chunk_tokens):
                sl = slice(lo, lo + chunk_tokens)
                _score_chunk(model, adapter, states, flat[sl], target[sl], sent_of_token[sl], acc)
    if acc is None:
        raise InputError(model_dir, "no sentences to probe")
    return acc.table(model_name=model_name, sources=_source_layers(model_dir, len(acc.ce)),
                     bootstrap=bootstrap, seed=seed, head_name=head_name)


def _score_chunk(model, adapter, states, rows, target, sent, acc: "_Accumulators") -> None:
    """Score the tokens at ``rows`` of the flattened ``states`` (one per layer), one layer at a time."""
    import torch

    def logp_of(layer):
        return torch.log_softmax(adapter.mlm_logits(model, states[layer].index_select(0, rows)).float(), dim=-1)

    last_logp = logp_of(len(states) - 1)
    last_top1 = last_logp.argmax(-1)
    last_p = last_logp.exp()
    for layer in range(len(states)):
        logp = last_logp if layer == len(states) - 1 else logp_of(layer)
        top5 = logp.topk(5, dim=-1).indices
        top1 = top5[:, 0]
        correct1 = (top1 == target)
        acc.add(layer,
                correct1=correct1,
                correct5=(top5 == target[:, None]).any(-1),
                nll=-logp.gather(-1, target[:, None]).squeeze(-1),
                agree=(top1 == last_top1),
                kl=(last_p * (last_logp - logp)).sum(-1),
                sent=sent)


class _Accumulators:
    def __init__(self, n_layers: int, n_sent: int):
        self.top1 = np.zeros((n_layers, n_sent), dtype=np.int64)
        self.tokens = np.zeros(n_sent, dtype=np.int64)
        self.top5 = np.zeros(n_layers, dtype=np.int64)
        self.ce = np.zeros(n_layers, dtype=np.float64)
        self.agree = np.zeros(n_layers, dtype=np.int64)
        self.kl = np.zeros(n_layers, dtype=np.float64)

    def add(self, layer, *, correct1, correct5, nll, agree, kl, sent):
        sent = sent.cpu().numpy()
        np.add.at(self.top1[layer], sent, correct1.cpu().numpy().astype(np.int64))
        if layer == 0:
            np.add.at(self.tokens, sent, 1)
        self.top5[layer] += int(correct5.sum())
        self.ce[layer] += float(nll.double().sum())
        self.agree[layer] += int(agree.sum())
        self.kl[layer] += float(kl.double().sum())

    def table(self, *, model_name, sources, bootstrap, seed, head_name) -> pd.DataFrame:
        n_tok = int(self.tokens.sum())
        if n_tok == 0:
            raise ValueError("the probe sentences hold no scoreable tokens")
        top1 = self.top1.sum(1) / n_tok
        lo, hi = bootstrap_ratio_ci(self.top1, self.tokens, bootstrap, seed)
        rows = []
        for layer in range(len(self.ce)):
            rows.append({
                "model": model_name, "layer": layer, "source_layer": sources[layer],
                "top1": top1[layer], "top1_lo": lo[layer], "top1_hi": hi[layer],
                "top5": self.top5[layer] / n_tok, "cross_entropy": self.ce[layer] / n_tok,
                "agree_last": self.agree[layer] / n_tok, "kl_last": self.kl[layer] / n_tok,
                "n_tokens": n_tok, "n_sentences": int((self.tokens > 0).sum()), "head": head_name,
            })
        return pd.DataFrame(rows, columns=COLUMNS)


def bootstrap_ratio_ci(hits: np.ndarray, counts: np.ndarray, n_boot: int, seed: int = 0,
                       level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of sum(hits)/sum(counts) per row, resampling the columns (sentences) with
    replacement: tokens of one sentence are not independent, sentences are."""
    n_rows = hits.shape[0]
    keep = counts > 0
    hits, counts = hits[:, keep], counts[keep]
    if n_boot <= 0 or counts.size < 2:
        return np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    rng = np.random.default_rng(seed)
    n = counts.size
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # (B, n): times each sentence is drawn
    ratios = (weights @ hits.T) / (weights @ counts)[:, None]  # (B, rows)
    alpha = (1 - level) / 2
    return np.quantile(ratios, alpha, axis=0), np.quantile(ratios, 1 - alpha, axis=0)


def _source_layers(model_dir, n_hidden: int) -> list[int]:
    layers = source_layers(model_dir)
    if layers is None:
        return list(range(n_hidden))
    return [0] + [s + 1 for s in layers]


def probe_to_file(model_dir, sentences_tsv, out_csv, *, model_name: str, settings: dict,
                   variant: dict | None = None, base_name: str = "",
                   head_dir: str | Path | None = None) -> pd.DataFrame:
    """The probe rule: verify the model (and fitted head) folders, probe, write the CSV.

    With ``variant`` (a probe-only variant's config entry), ``model_dir`` is its base and the variant is built
    in a scratch folder first. With ``head_dir``, every layer goes through that fitted head instead of the
    model's own.
    """
    from .io import atomic_path
    from .layermap import temporary_variant
    from .manifest import verify

    verify(model_dir)
    if head_dir is not None:
        verify(head_dir)
    with contextlib.ExitStack() as stack:
        if variant is not None:
            model_dir = stack.enter_context(temporary_variant(model_dir, variant, base_name=base_name,
                                                              variant_name=model_name))
        table = run_probe(model_dir, read_sentences(sentences_tsv), model_name=model_name,
                          max_length=settings["max_length"], batch_size=settings["batch_size"],
                          chunk_tokens=settings["chunk_tokens"], bootstrap=settings["bootstrap"],
                          head_dir=head_dir)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


# --- output change (v1's claim: removing or duplicating most layers barely changes the outputs) ------------

CHANGE_COLUMNS = ["variant", "base", "layers", "kind", "touched", "first_touched", "kl", "agree_top1",
                  "agree_lo", "agree_hi", "top1_base", "top1_variant", "n_tokens", "n_sentences"]


def output_change(base_dir, variant_dir, sentences: Sequence[str], *, variant_name: str = "", base_name: str = "",
                  max_length: int = 128, batch_size: int = 32, chunk_tokens: int = 2048, bootstrap: int = 1000,
                  seed: int = 0, device: str | None = None, head_dir: str | Path | None = None) -> pd.DataFrame:
    """How much a variant's final MLM distribution differs from its base's, on the same input tokens.

    With ``head_dir`` (a base published without an MLM head), both models read their last layer through that
    fitted head.

    ``kl`` is the mean KL(base || variant) per token (nats); ``agree_top1`` the share of tokens where both
    predict the same token (95% bootstrap interval over sentences); ``top1_*`` how often each reconstructs the
    input token from its last layer.
    """
    import torch
    from transformers import AutoTokenizer

    from .families import model_depth
    from .layermap import describe, source_layers

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base, base_adapter = load_mlm(base_dir, device, head_dir=head_dir)
    var, var_adapter = load_mlm(variant_dir, device, head_dir=head_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    order = np.argsort(-np.array([len(x) for x in enc["input_ids"]]), kind="stable")
    n_sent = len(sentences)
    agree = np.zeros((1, n_sent), dtype=np.int64)
    tokens = np.zeros(n_sent, dtype=np.int64)
    kl_sum, hit_base, hit_var = 0.0, 0, 0
    with torch.inference_mode():
        for start in range(0, n_sent, batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer.pad({k: [enc[k][i] for i in idx] for k in
                                   ("input_ids", "attention_mask", "special_tokens_mask")}, return_tensors="pt")
            ids, att = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            keep = att.bool() & ~batch["special_tokens_mask"].to(device).bool()
            hb = base_adapter.hidden_states(base, ids, att)[-1][keep]
            hv = var_adapter.hidden_states(var, ids, att)[-1][keep]
            target = ids[keep]
            sent = torch.as_tensor(idx, device=device)[:, None].expand_as(ids)[keep].cpu().numpy()
            for lo in range(0, target.numel(), chunk_tokens):
                sl = slice(lo, lo + chunk_tokens)
                lb = torch.log_softmax(base_adapter.mlm_logits(base, hb[sl]).float(), -1)
                lv = torch.log_softmax(var_adapter.mlm_logits(var, hv[sl]).float(), -1)
                tb, tv = lb.argmax(-1), lv.argmax(-1)
                kl_sum += float((lb.exp() * (lb - lv)).sum(-1).double().sum())
                np.add.at(agree[0], sent[sl], (tb == tv).cpu().numpy().astype(np.int64))
                np.add.at(tokens, sent[sl], 1)
                hit_base += int((tb == target[sl]).sum())
                hit_var += int((tv == target[sl]).sum())
    n_tok = int(tokens.sum())
    lo_ci, hi_ci = bootstrap_ratio_ci(agree, tokens, bootstrap, seed)
    layers = source_layers(variant_dir)
    what = describe(layers, model_depth(base_dir)) if layers is not None else {"kind": "identity", "touched": [],
                                                                                "first": None}
    row = {"variant": variant_name, "base": base_name, "layers": format_layers(layers or []),
           "kind": what["kind"], "touched": format_layers(what["touched"]), "first_touched": what["first"],
           "kl": kl_sum / n_tok, "agree_top1": agree.sum() / n_tok, "agree_lo": lo_ci[0], "agree_hi": hi_ci[0],
           "top1_base": hit_base / n_tok, "top1_variant": hit_var / n_tok, "n_tokens": n_tok,
           "n_sentences": int((tokens > 0).sum())}
    return pd.DataFrame([row], columns=CHANGE_COLUMNS)


def output_change_to_file(base_dir, variant_dir, sentences_tsv, out_csv, *, variant_name: str, base_name: str,
                          settings: dict, variant: dict | None = None,
                          head_dir: str | Path | None = None) -> pd.DataFrame:
    """The output_change rule; ``variant_dir`` is None for a probe-only variant (built from ``variant``)."""
    from .io import atomic_path
    from .layermap import temporary_variant
    from .manifest import verify

    verify(base_dir)
    if head_dir is not None:
        verify(head_dir)
    with contextlib.ExitStack() as stack:
        if variant_dir is None:
            variant_dir = stack.enter_context(temporary_variant(base_dir, variant, base_name=base_name,
                                                                variant_name=variant_name))
        else:
            verify(variant_dir)
        table = output_change(base_dir, variant_dir, read_sentences(sentences_tsv), variant_name=variant_name,
                              base_name=base_name, max_length=settings["max_length"],
                              batch_size=settings["batch_size"], chunk_tokens=settings["chunk_tokens"],
                              bootstrap=settings["bootstrap"], head_dir=head_dir)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
