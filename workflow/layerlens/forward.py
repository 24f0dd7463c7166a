"""Hidden states at the scored tokens: the one forward loop behind the probe and output change.

Both read a masked-LM model's hidden states at the sentences' own tokens:

- :func:`load_mlm` loads the model (or a probe-only variant of it, built in memory) with its pretrained
  masked-LM head, or with a fitted one (:mod:`layerlens.head`), and refuses a checkpoint that has neither.
- :class:`Encoded` tokenizes the sentences once (truncated to ``max_length``) into *passes*: by default one per
  sentence, nothing masked, every own token scored (the probe's input mode); with ``masking`` (the masked mode,
  :mod:`layerlens.masking`) the sentence's masking patterns, each scored at its masked positions against the
  original token. Passes are sorted longest first, so similar lengths share a batch and padding is small.
  :meth:`Encoded.chunks` pads one batch at a time, runs each model's forward pass once per batch
  (``adapter.hidden_states``: the embedding output and every layer), and hands out the batch's scored positions
  in chunks of at most ``chunk_tokens``, with the target token at each and the sentence it comes from. Scored
  are the sentence's own tokens: not padding, not special tokens, and not ``[UNK]``, which stands for text the
  vocabulary lacks, so no head can give the input back there; :attr:`Encoded.n_unk_excluded` counts them. A
  consumer turns a chunk's states into vocabulary-sized logits one layer at a time, so memory above the forward
  pass's own states does not grow with depth.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .errors import InputError
from .families import FamilyAdapter, adapter_for_dir, read_model_config
from .head import apply_head
from .layermap import model_from_tensors, variant_model
from .masking import Masking, Pattern, patterns
from .modelfiles import load_pretrained, quiet_head_report

if TYPE_CHECKING:  # torch is imported where tensors are used: the Snakefile imports nothing heavy
    import torch

def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_mlm(model_dir: str | Path, device: str = "cpu", head_dir: str | Path | None = None, *,
             layers: Sequence[int] | None = None, state: dict | None = None):
    """The model with its pretrained masked-LM head, or with the head fitted in ``head_dir``; a clear error if
    there is neither. Returns the model (eval mode, on ``device``) and its family adapter.

    With ``layers``, the variant of ``model_dir`` under that layer map, built in memory
    (:func:`layerlens.layermap.variant_model`). ``state``: the checkpoint's tensors of ``model_dir``, if
    already read; one read then serves a base and its variants.
    """
    from transformers import AutoModelForMaskedLM

    adapter = adapter_for_dir(model_dir)
    with quiet_head_report(model_dir, head_dir) if head_dir is not None else contextlib.nullcontext():
        if layers is not None:
            model, info = variant_model(model_dir, layers, state=state)
        elif state is not None:
            model, info = model_from_tensors(read_model_config(model_dir), state)
        else:
            model, info = load_pretrained(AutoModelForMaskedLM, model_dir, output_loading_info=True)
    if head_dir is not None:
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


@dataclass(frozen=True)
class Chunk:
    """Up to ``chunk_tokens`` kept positions of one batch."""

    #: per model, per layer: the whole batch's hidden states flattened to (batch x length, hidden); views
    states: tuple[tuple[torch.Tensor, ...], ...]
    #: the chunk's positions: rows of those flattened states
    rows: torch.Tensor
    #: the original token at each position (what a head should give back)
    target: torch.Tensor
    #: the sentence of each position, as an index into the encoded sentences
    sentence: np.ndarray

    def hidden(self, layer: int, model: int = 0) -> torch.Tensor:
        """The chunk's hidden states at ``layer`` of the ``model``-th model, (positions, hidden)."""
        return self.states[model][layer].index_select(0, self.rows)


class Encoded:
    """Sentences tokenized once, as passes (see the module docstring), for any number of runs of :meth:`chunks`."""

    def __init__(self, tokenizer, sentences: Sequence[str], max_length: int, masking: Masking | None = None):
        self.tokenizer = tokenizer
        self.n_sentences = len(sentences)
        self.masking = masking
        enc = tokenizer(list(sentences), truncation=True, max_length=max_length, return_special_tokens_mask=True)
        self.unk_id = tokenizer.unk_token_id  # None: a tokenizer that never gives [UNK] (byte-level BPE)
        if masking is not None and tokenizer.mask_token_id is None:
            raise InputError(getattr(tokenizer, "name_or_path", "tokenizer"),
                             "the tokenizer has no mask token, which the masked probe needs")
        self.passes: list[Pattern] = []
        #: [UNK] tokens among the sentences' own tokens (within max_length): not scored
        self.n_unk_excluded = 0
        for i, (ids, special) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"])):
            passes, n_unk = sentence_passes(tokenizer, i, ids, special, masking)
            self.passes += passes
            self.n_unk_excluded += n_unk
        self.targets = [[enc["input_ids"][p.sentence][q] for q in p.scored] for p in self.passes]
        lengths = np.array([len(p.input_ids) for p in self.passes])
        self.order = np.argsort(-lengths, kind="stable")  # similar lengths share a batch: little padding

    def chunks(self, models: Sequence[tuple[object, FamilyAdapter]], *, batch_size: int, chunk_tokens: int,
               device: str, last_only: bool = False, desc: str | None = None) -> Iterator[Chunk]:
        """One forward pass per batch (of passes) and model, then the batch's scored positions chunk by chunk.

        ``models`` are (model, adapter) pairs that read the same tokens (a variant and its base); with
        ``last_only`` a chunk keeps only each model's last layer (``hidden(-1, m)``). Consume the chunks under
        ``torch.inference_mode()``: the states are inference tensors.
        """
        import torch
        from tqdm.auto import tqdm

        starts = range(0, len(self.passes), batch_size)
        for start in tqdm(starts, desc=desc, mininterval=5, disable=desc is None):
            idx = self.order[start:start + batch_size]
            batch = [self.passes[i] for i in idx]
            input_ids, attention, keep = pad_passes(self.tokenizer, batch, device)
            with torch.inference_mode():
                states = []
                for model, adapter in models:
                    hidden = adapter.hidden_states(model, input_ids, attention)
                    hidden = hidden[-1:] if last_only else hidden
                    states.append(tuple(h.reshape(-1, h.shape[-1]) for h in hidden))  # views, no copies
            rows = keep.reshape(-1).nonzero().squeeze(1)
            # rows run pass by pass, positions ascending: the order of each pass's targets
            target = torch.tensor([t for i in idx for t in self.targets[i]], dtype=torch.long, device=device)
            sentence = np.array([p.sentence for p in batch for _ in p.scored], dtype=np.int64)
            if target.numel() != rows.numel():
                raise RuntimeError("scored positions and targets out of step (a tokenizer that pads oddly?)")
            for lo in range(0, rows.numel(), chunk_tokens):
                sl = slice(lo, lo + chunk_tokens)
                yield Chunk(tuple(states), rows[sl], target[sl], sentence[sl])


def sentence_passes(tokenizer, index: int, ids: Sequence[int], special: Sequence[int],
                    masking: Masking | None) -> tuple[list[Pattern], int]:
    """The passes of one tokenized sentence (``index``: its place, which seeds its masking) and its number of
    [UNK] tokens among its own: unmasked with every own token scored, or its masking patterns."""
    own = [p for p, s in enumerate(special) if not s]
    candidates = [p for p in own if ids[p] != tokenizer.unk_token_id]
    if masking is None:
        passes = [Pattern(index, list(ids), candidates)] if candidates else []
    else:
        passes = patterns(index, ids, candidates, masking, tokenizer.mask_token_id, len(tokenizer))
    return passes, len(own) - len(candidates)


def pad_passes(tokenizer, passes: Sequence[Pattern], device: str):
    """A batch of passes padded as the tokenizer pads (its padding side): input ids, attention mask, and the
    scored positions (boolean), each (passes, length) on ``device``. Rows of the flattened scored mask run pass
    by pass, positions ascending: the order of :attr:`Pattern.scored`."""
    unscored = [np.ones(len(p.input_ids), dtype=np.int64) for p in passes]
    for flags, p in zip(unscored, passes):
        flags[p.scored] = 0
    # unscored positions ride as "special" tokens: the tokenizer pads that mask with the rest
    padded = tokenizer.pad({"input_ids": [p.input_ids for p in passes],
                            "attention_mask": [[1] * len(p.input_ids) for p in passes],
                            "special_tokens_mask": [f.tolist() for f in unscored]}, return_tensors="pt")
    attention = padded["attention_mask"].to(device)
    keep = attention.bool() & ~padded["special_tokens_mask"].to(device).bool()
    return padded["input_ids"].to(device), attention, keep
