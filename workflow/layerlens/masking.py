"""Masking: which positions of a sentence are hidden from the model, and what stands in their place.

Two users, one definition of BERT's corruption (:data:`BERT_SPLIT`: of the selected positions 80% become the mask
token, 10% a random token, 10% stay as they are):

- **The probe's masked mode** (``probe.mode: masked``, :func:`patterns`). Each sentence gets masking patterns;
  one pattern is one forward pass, which gives every layer's state at its masked positions, and the target at
  each is the original token. A position is a candidate if it is one of the sentence's own tokens (not a special
  token, not ``[UNK]``: no head can give back text its vocabulary lacks). ``probe.masking``:

  ``scheme: random`` (the default)
      one pattern per sentence: each candidate selected with ``probability`` (0.15, BERT's rate), at least one
      per sentence (a uniformly drawn candidate where the draw selected none). The context is corrupted about as
      much as in pre-training and the cost is that of the input mode: one pass per sentence.
  ``scheme: each``
      one pattern per selected position, with only that position masked: every candidate in turn, or, in a
      sentence with more than ``max_positions`` candidates, that many drawn without replacement. The context is
      clean (one token missing) and every token is scored, at one pass per scored token.
  ``corruption: mask`` (the default)
      every selected position becomes the mask token, so no scored position shows its own token: layer 0 (the
      embedding output) then holds only the mask token, the position and the segment, and its accuracy is the
      floor that the layers' use of context is measured against.
  ``corruption: bert``
      BERT's 80/10/10: the pre-training distribution, where 10% of the scored positions show their own token
      (which layer 0 can read back trivially) and 10% a random one.

  The patterns of sentence ``i`` are drawn from ``numpy.random.default_rng([seed, i])``: they depend on the seed
  and the sentence's place in the table only, not on the batch size, the batch order or the other sentences.
- **Fitting a head with** ``objective: mlm`` (:func:`mask_tokens`): BERT's masking of a padded batch, drawn from a
  torch generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: BERT's split of the selected positions: mask token, random token, kept
BERT_SPLIT = (0.8, 0.1, 0.1)
SCHEMES = ("random", "each")
CORRUPTIONS = ("mask", "bert")


@dataclass(frozen=True)
class Masking:
    """The settings of the probe's masked mode (``probe.masking``)."""

    scheme: str = "random"
    probability: float = 0.15
    corruption: str = "mask"
    max_positions: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"masking scheme must be one of {', '.join(SCHEMES)}, not {self.scheme!r}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {', '.join(CORRUPTIONS)}, not {self.corruption!r}")
        if not 0 < self.probability <= 1 or self.max_positions < 1:
            raise ValueError("masking needs 0 < probability <= 1 and max_positions >= 1")

    @classmethod
    def from_settings(cls, settings: dict | None) -> Masking:
        return cls(**(settings or {}))


@dataclass(frozen=True)
class Pattern:
    """One forward pass: the (corrupted) input ids and the positions scored in it."""

    sentence: int
    input_ids: list[int]
    scored: list[int]


def patterns(index: int, input_ids: Sequence[int], candidates: Sequence[int], masking: Masking, mask_id: int,
             vocab_size: int) -> list[Pattern]:
    """The masking patterns of sentence ``index`` (token ids ``input_ids``, candidate positions ``candidates``)."""
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.size == 0:
        return []
    rng = np.random.default_rng([masking.seed, index])
    if masking.scheme == "random":
        chosen = cand[rng.random(cand.size) < masking.probability]
        if chosen.size == 0:
            chosen = cand[rng.integers(cand.size)][None]
        groups = [chosen]
    else:
        if cand.size > masking.max_positions:
            cand = np.sort(rng.choice(cand, masking.max_positions, replace=False))
        groups = [pos[None] for pos in cand]
    out = []
    for group in groups:
        ids = list(input_ids)
        for pos in group.tolist():
            ids[pos] = _corrupt(ids[pos], masking.corruption, rng, mask_id, vocab_size)
        out.append(Pattern(index, ids, sorted(group.tolist())))
    return out


def _corrupt(token: int, corruption: str, rng, mask_id: int, vocab_size: int) -> int:
    if corruption == "mask":
        return mask_id
    roll = rng.random()
    if roll < BERT_SPLIT[0]:
        return mask_id
    if roll < BERT_SPLIT[0] + BERT_SPLIT[1]:
        return int(rng.integers(vocab_size))
    return token


def mask_tokens(input_ids, candidates, mask_id: int, vocab_size: int, probability: float, gen):
    """BERT's masking of a padded batch: select ``probability`` of the ``candidates`` (at least one); of those,
    80% -> mask, 10% -> random, 10% kept (:data:`BERT_SPLIT`). Returns the corrupted ids and the selection."""
    import torch

    selected = (torch.rand(input_ids.shape, generator=gen) < probability) & candidates
    if not selected.any():
        first = candidates.nonzero()[0]
        selected[first[0], first[1]] = True
    inputs = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=gen)
    inputs[selected & (roll < BERT_SPLIT[0])] = mask_id
    swap = selected & (roll >= BERT_SPLIT[0]) & (roll < BERT_SPLIT[0] + BERT_SPLIT[1])
    inputs[swap] = torch.randint(vocab_size, input_ids.shape, generator=gen)[swap]
    return inputs, selected
